"""The [novaglide] config section."""

from typing import ClassVar

import attrs

from gamed.core.settings import StreamLimits


@attrs.define
class NovaglideSettings(StreamLimits):
    # listener keys (endpoint kind) and numbers that must be above zero, for the config
    LISTENERS: ClassVar[dict] = {"listen": "tcp", "classic_listen": "tcp"}
    POSITIVE: ClassVar[frozenset] = frozenset({"match_seconds", "classic_max_request"})
    #: TCP JSON lines listener (Twisted endpoint description; empty disables it)
    listen: str = "tcp:5555"
    #: the original desktop client's pickle wire (empty = off). That client hard-codes
    #: localhost:5555: to serve it, move `listen` to another port and set this to
    #: "tcp:5555". Keep it on a trusted network (see docs/novaglide.md)
    classic_listen: str = ""
    #: classic wire: the largest request accepted, in bytes (the client's are under 1 KiB)
    classic_max_request: int = 4096
    #: Elo K factor
    k_factor: float = 40.0
    #: match length in seconds
    match_seconds: float = 300.0
    #: seconds a dropped player may take to log in again and rejoin the match
    rejoin_grace: float = 15.0
    #: matchmaking: accepted rating gap at first, its growth per second, its maximum
    match_window: float = 100.0
    match_window_widen: float = 50.0
    match_window_max: float = 1000.0
    #: rows in get_elo's top list
    top_rows: int = 10
    #: rows in get_challengers (the rated players, best first)
    challengers_rows: int = 100
