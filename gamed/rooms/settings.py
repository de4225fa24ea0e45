"""The [rooms] config section."""

from typing import ClassVar

import attrs

from gamed.core.settings import StreamLimits


@attrs.define
class RoomsSettings(StreamLimits):
    # listener keys (endpoint kind) and numbers that must be above zero, for the config
    LISTENERS: ClassVar[dict] = {"websocket": "tcp", "listen": "tcp"}
    POSITIVE: ClassVar[frozenset] = frozenset({"max_players"})
    #: WebSocket listener (any request path)
    websocket: str = "tcp:8081"
    #: TCP JSON lines listener
    listen: str = "tcp:8082"
    #: players per room
    max_players: int = 8
    #: relay frames queued between event_room_start and the ack before the client is dropped
    max_queued_frames: int = 64
    #: on shutdown, seconds a player in no room (a login screen) is kept open so that a
    #: request on its way is answered with result "server_closing" (0 = close at once;
    #: at most [shutdown] grace_period)
    drain_linger: float = 2.0
    #: token bucket per connection: relayed games send many small frames
    rate: float = 1000.0
    burst: int = 2000
