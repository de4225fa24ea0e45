"""The [uttt] config section."""

from typing import ClassVar

import attrs

from gamed.core.settings import StreamLimits


@attrs.define
class UtttSettings(StreamLimits):
    # listener keys (endpoint kind) and numbers that must be above zero, for the config
    LISTENERS: ClassVar[dict] = {"websocket": "tcp", "listen": "tcp"}
    POSITIVE: ClassVar[frozenset] = frozenset({
        "max_open_matches", "move_timeout", "pair_interval", "max_queued_requests"})
    #: WebSocket listener (any request path)
    websocket: str = "tcp:5556"
    #: TCP JSON lines listener
    listen: str = "tcp:5558"
    #: Elo K factor for ranked matches
    k_factor: float = 20.0
    #: open matches per user
    max_open_matches: int = 5
    #: seconds without a move after which the player to move loses (7 days)
    move_timeout: float = 7 * 24 * 3600.0
    #: random matching: accepted rating gap at first, its growth per second of waiting,
    #: and its maximum
    match_window: float = 100.0
    match_window_widen: float = 25.0
    match_window_max: float = 1000.0
    #: seconds between re-checks of the random-match queue
    pair_interval: float = 2.0
    #: requests a connection may have waiting while an earlier one is served
    max_queued_requests: int = 64
