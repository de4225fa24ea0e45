"""Settings shared by every service section of the config (transport limits)."""

import attrs


@attrs.define
class StreamLimits:
    """Per-connection limits of a stream transport (JSON lines or WebSocket)."""

    #: longest accepted line / frame in bytes; past it: an error reply, then close
    max_line_length: int = 65536
    #: token bucket: sustained messages per second and burst size per connection
    rate: float = 120.0
    burst: int = 240
    #: messages refused for rate beyond the bucket before the connection is closed
    flood_close_after: int = 200
    #: seconds without any received frame before the connection is closed (0 = never)
    idle_timeout: float = 300.0
    #: concurrent connections per listener; past it new ones are refused politely
    max_connections: int = 10000
    #: bytes queued for a slow reader before it is dropped
    max_send_buffer: int = 4 * 1024 * 1024
    #: WebSocket listeners: seconds between the server's pings (0 = none); a pong counts
    #: as activity for idle_timeout (a browser tab that only listens stays), and a pong
    #: missing for as long closes a dead connection (at least 2 s)
    ping_interval: float = 30.0
