"""The [uttt] config section."""

import attrs

from gamed.core.settings import StreamLimits


@attrs.define
class UtttSettings(StreamLimits):
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
