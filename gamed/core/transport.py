"""What both stream adapters share: limits, rate limiting, idle timeout, counting, channel.

`StreamEndpoint` is the per-listener part (handler factory, limits, clock, stats, the
connection count); `Connection` is the per-connection part that implements `Channel` for
the handler. The JSON-lines and WebSocket adapters only move frames in and out.

`READS` gathers the prepared frames (relays, broadcasts) sent while an adapter handles
one read from a socket and writes them at its end: one write per receiving connection
per read, however many frames the read held (see `ReadBatch`).
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.logger import Logger

from gamed.core.channel import BadFrame, ConnectionHandler, HandlerFactory, PreparedText, encode
from gamed.core.metrics import ServiceStats
from gamed.core.ratelimit import TokenBucket
from gamed.core.settings import StreamLimits

log = Logger(namespace="gamed.transport")


class ReadBatch:
    """Prepared frames sent while a read is handled, written once per connection at its end.

    A relay read of 16 frames for 7 peers made 112 `transport.write` calls (each a
    producer check and a reactor update); gathered, it makes 7. An adapter runs each read
    through `handle`; `Connection.send_prepared` queues on `Connection.outbox` while one
    is under way (`depth`), and writes at once otherwise (a tick's broadcast). Every other
    write to a connection (a reply, a control frame, a close, autobahn's own frames) first
    writes what that connection has queued, so the order on the wire is the order of the
    sends, and the checks (closed, send-buffer cap) give the same outcome as frame by frame.
    """

    __slots__ = ("depth", "queued")

    def __init__(self):
        self.depth = 0
        self.queued: list = []  # connections with an outbox, in the order they got one

    def handle(self, receive, data) -> None:
        """`receive(data)` with prepared frames gathered until it returns (reads nest when a
        test's transport delivers synchronously: the outermost one writes)."""
        self.depth += 1
        try:
            receive(data)
        finally:
            self.depth -= 1
            if not self.depth and self.queued:
                self.flush()

    def flush(self) -> None:
        queued, self.queued = self.queued, []
        for connection in queued:
            connection.flush()


#: the one batch of the process (the reactor handles one read at a time)
READS = ReadBatch()


class StreamEndpoint:
    """Everything the connections of one listener share."""

    def __init__(self, service: str, transport: str, handler_factory: HandlerFactory,
                 limits: StreamLimits, clock, stats: ServiceStats):
        self.service = service
        self.transport = transport
        self.handler_factory = handler_factory
        self.limits = limits
        self.clock = clock
        self.stats = stats
        self.open = 0

    def full(self) -> bool:
        return self.open >= self.limits.max_connections


class Connection:
    """The Channel a handler talks to, plus the checks applied to every incoming frame.

    `write` is the adapter's function that sends one encoded frame (str) on the wire;
    `lose` closes the underlying connection; `transport` is the TCP transport (for the
    send buffer size). `write_prepared` sends one `PreparedText`; `wire_bytes` (with
    `write_wire`) are the adapter's wire form of a `PreparedText` and the function that
    writes several of them joined, which lets `send_prepared` gather frames during a read
    (`READS`); an adapter without them writes each prepared frame at once.
    """

    #: wire bytes of prepared frames waiting for the end of the read (see ReadBatch)
    outbox: Optional[list] = None

    def __init__(self, endpoint: StreamEndpoint, peer: str, write: Callable[[str], None],
                 lose: Callable[[], None], tcp_transport,
                 write_prepared: Optional[Callable[[PreparedText], None]] = None,
                 wire_bytes: Optional[Callable[[PreparedText], bytes]] = None,
                 write_wire: Optional[Callable[[bytes], None]] = None):
        self.endpoint = endpoint
        self.peer = peer
        self.transport = endpoint.transport
        self._write = write
        self._write_prepared = write_prepared or (lambda frame: write(frame.text))
        self._stats = endpoint.stats
        self._max_send_buffer = endpoint.limits.max_send_buffer
        # a Twisted TCP transport exposes its unsent data (dataBuffer, offset, _tempDataLen)
        self._measurable = all(hasattr(tcp_transport, name)
                               for name in ("dataBuffer", "offset", "_tempDataLen"))
        self._lose = lose
        self._tcp = tcp_transport
        self._wire_bytes = wire_bytes if write_wire is not None else None
        self._write_wire = write_wire
        self.closed = False
        self.close_reason = ""
        limits = endpoint.limits
        clock = endpoint.clock
        self.bucket = TokenBucket(limits.rate, limits.burst, clock.seconds)
        self.refused = 0
        self.last_refused = float("-inf")
        self._refill_seconds = limits.burst / limits.rate if limits.rate > 0 else float("inf")
        self.limited = False
        self.last_activity = clock.seconds()
        self.idle_call = None
        self.handler: ConnectionHandler = endpoint.handler_factory()

    # -- lifecycle, driven by the adapter ---------------------------------------------------

    def start(self) -> None:
        endpoint = self.endpoint
        endpoint.open += 1
        endpoint.stats.connection_opened(endpoint.transport)
        if endpoint.limits.idle_timeout > 0:
            self.idle_call = endpoint.clock.callLater(endpoint.limits.idle_timeout,
                                                      self._check_idle)
        self.handler.connection_made(self)

    def stop(self, reason: str) -> None:
        if self.idle_call is not None and self.idle_call.active():
            self.idle_call.cancel()
        self.idle_call = None
        if not self.closed:
            self.closed = True
        endpoint = self.endpoint
        endpoint.open -= 1
        endpoint.stats.connection_closed(endpoint.transport)
        try:
            # our own reason (slow_reader, flood, idle_timeout) when we closed it
            self.handler.connection_lost(self.close_reason or reason)
        except Exception:
            log.failure("connection_lost of {service} handler failed", service=endpoint.service)

    def _check_idle(self) -> None:
        timeout = self.endpoint.limits.idle_timeout
        now = self.endpoint.clock.seconds()
        quiet = now - self.last_activity
        if quiet >= timeout and self._kept_alive():
            self.last_activity = now
            quiet = 0.0
        if quiet >= timeout:
            self.idle_call = None
            self.refuse_and_close("idle_timeout", "no message for %d seconds" % timeout)
        else:
            self.idle_call = self.endpoint.clock.callLater(timeout - quiet, self._check_idle)

    def _kept_alive(self) -> bool:
        try:
            return bool(self.handler.kept_alive())
        except Exception:
            log.failure("kept_alive of {service} handler failed", service=self.endpoint.service)
            return False

    # -- incoming ---------------------------------------------------------------------------

    def frame_received(self, text: str) -> None:
        """One complete frame of text from the peer."""
        if self._admit():
            try:
                self.handler.text_received(text)
            except Exception:
                self._handler_failed()

    def message_received(self, message: dict) -> bool:
        """One message an adapter decoded itself (a wire that is not JSON text); False if
        it was refused before the handler saw it (closed, over the rate)."""
        if not self._admit():
            return False
        try:
            self.handler.message_received(message)
        except Exception:
            self._handler_failed()
        return True

    def _handler_failed(self) -> None:
        log.failure("{service} handler failed on a message from {peer}",
                    service=self.endpoint.service, peer=self.peer)
        self.endpoint.stats.error("internal")
        self.refuse(BadFrame("internal_error", "the server failed to handle this message"))

    def bad_frame_received(self, problem: BadFrame) -> None:
        """A frame the adapter could not even decode (not UTF-8, binary): counted and
        rate-limited like any other, then refused."""
        if self._admit():
            self.refuse(problem)

    def _admit(self) -> bool:
        """Count an incoming frame and take a token for it; a frame over the rate is
        refused here (and a flood closed). True if the frame may be handled."""
        if self.closed:
            return False
        endpoint = self.endpoint
        self.last_activity = now = endpoint.clock.seconds()
        endpoint.stats.messages_in += 1
        if not self.bucket.take_at(now):
            # refusals count toward a flood close while they keep coming; after a pause
            # long enough to refill the bucket, an occasional burst starts from zero
            now = self.last_activity
            if now - self.last_refused >= self._refill_seconds:
                self.refused = 0
            self.last_refused = now
            self.refused += 1
            if self.refused > endpoint.limits.flood_close_after:
                endpoint.stats.error("rate_limited")
                self.refuse_and_close("flood", "too many messages: connection closed")
            elif not self.limited:
                self.limited = True
                self.refuse(BadFrame("rate_limited", "too many messages: slow down (limit %g/s)"
                                     % endpoint.limits.rate))  # counted there, once
            else:
                endpoint.stats.error("rate_limited")
            return False
        self.limited = False
        return True

    def refuse(self, problem: BadFrame) -> None:
        self.endpoint.stats.error(problem.code)
        log.debug("{service}: refused a frame from {peer}: {code}", service=self.endpoint.service,
                  peer=self.peer, code=problem.code)
        self.handler.frame_refused(problem)

    def refuse_and_close(self, code: str, detail: str) -> None:
        if self.closed:
            return
        self.refuse(BadFrame(code, detail))
        self.close(code)

    # -- Channel ------------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        if self.outbox is not None:
            self.flush()
        if self._may_send():
            self._write(text)

    def send_bytes(self, data: bytes) -> None:
        """Send bytes as they are (an adapter whose `write` takes bytes: the classic wire)."""
        if self.outbox is not None:
            self.flush()
        if self._may_send():
            self._write(data)

    def send_prepared(self, frame: PreparedText) -> None:
        # the relay's hot path: one call per peer per frame
        wire_bytes = self._wire_bytes
        if wire_bytes is None:  # an adapter without a wire form: frame by frame
            if self._may_send():
                self._write_prepared(frame)
            return
        if READS.depth:
            if self.closed:
                return
            outbox = self.outbox
            if outbox is None:
                self.outbox = outbox = []
                READS.queued.append(self)
            outbox.append(wire_bytes(frame))
            return
        if self.outbox is not None:
            self.flush()
        if self._may_send():
            self._write_wire(wire_bytes(frame))

    def flush(self) -> None:
        """Write the prepared frames queued during a read, joined: the same checks as frame
        by frame (frame k goes if the connection is open and the bytes unsent before it
        are within the cap; past the cap the reader is dropped), one write."""
        outbox, self.outbox = self.outbox, None
        if not outbox or self.closed:
            return
        tcp = self._tcp
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        if self._measurable:
            unsent = len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
            if unsent + len(data) - len(outbox[-1]) > self._max_send_buffer:
                went = 0  # the frames that went before the cap was passed, as before
                while unsent <= self._max_send_buffer:
                    unsent += len(outbox[went])
                    went += 1
                if went:
                    self._stats.messages_out += went
                    self._write_wire(b"".join(outbox[:went]))
                self._drop_slow_reader()
                return
        self._stats.messages_out += len(outbox)
        self._write_wire(data)

    def _may_send(self) -> bool:
        """Open and under the send-buffer cap; a reader past the cap is dropped (it would
        grow memory forever). Counts the message that may go."""
        if self.closed:
            return False
        tcp = self._tcp
        if self._measurable and (len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
                                 > self._max_send_buffer):
            self._drop_slow_reader()
            return False
        self._stats.messages_out += 1
        return True

    def _drop_slow_reader(self) -> None:
        """Past the send-buffer cap the reader is dropped (it would grow memory forever)."""
        self._stats.error("slow_reader")
        log.info("{service}: dropping slow reader {peer} ({size} bytes unsent)",
                 service=self.endpoint.service, peer=self.peer, size=self.buffered())
        self.close("slow_reader")
        self._tcp.abortConnection()

    def close(self, reason: str = "") -> None:
        if self.closed:
            return
        if self.outbox is not None:
            self.flush()  # what was sent before the close goes before it
            if self.closed:  # the flush dropped a slow reader
                return
        self.closed = True
        self.close_reason = reason
        log.debug("{service}: closing {peer}: {reason}", service=self.endpoint.service,
                  peer=self.peer, reason=reason)
        self._lose()

    def buffered(self) -> int:
        return unsent_bytes(self._tcp)


def accept_stream(endpoint: StreamEndpoint, transport,
                  refusal: Callable[[], Optional[bytes]]) -> bool:
    """What every stream connection does first: no Nagle (game messages are small and
    latency-bound); past max_connections it writes the protocol's `refusal()`, closes,
    counts the refusal and returns False."""
    if hasattr(transport, "setTcpNoDelay"):
        transport.setTcpNoDelay(True)
    if not endpoint.full():
        return True
    endpoint.stats.connections_refused += 1
    payload = refusal()
    if payload:
        transport.write(payload)
    transport.loseConnection()
    return False


def direct_writer(transport):
    """For one-off messages (replies, a tick's state): send at once when nothing is queued
    on a plain TCP transport -- one send() instead of a send plus two epoll updates through
    the reactor -- and queue like `transport.write` otherwise. Relays keep using
    `transport.write` (send_prepared), where the reactor's batching wins. Anything that is
    not a plain Twisted TCP connection (TLS, tests' StringTransport) just gets `write`."""
    sock = getattr(transport, "socket", None)
    if sock is None or not all(hasattr(transport, name) for name in
                               ("dataBuffer", "offset", "_tempDataLen", "disconnecting")):
        return transport.write
    queue = transport.write
    send = sock.send

    def write(data: bytes) -> None:
        if (transport._tempDataLen or len(transport.dataBuffer) - transport.offset
                or transport.disconnecting):
            queue(data)
            return
        try:
            sent = send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            queue(data)  # the reactor will see and report the broken connection
            return
        if sent < len(data):
            queue(data[sent:])

    return write


def unsent_bytes(transport) -> int:
    """Bytes a Twisted TCP transport holds that the kernel has not taken yet."""
    if transport is None:
        return 0
    data = getattr(transport, "dataBuffer", b"")
    offset = getattr(transport, "offset", 0)
    return len(data) - offset + getattr(transport, "_tempDataLen", 0)


def peer_of(transport) -> str:
    try:
        address = transport.getPeer()
    except Exception:
        return "unknown"
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    return "%s:%s" % (host, port) if host is not None else str(address)


def refusal_line(handler_factory: HandlerFactory, code: str, detail: str) -> Optional[str]:
    """The protocol's own error for a connection refused before it got a handler."""
    try:
        return encode(handler_factory().error_message(code, detail, None))
    except Exception:
        return None
