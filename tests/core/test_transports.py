"""The JSON-lines and WebSocket adapters over real loopback sockets, with a test handler."""

import json
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, error, reactor, task
from twisted.python import failure
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import StringTransport

from gamed.core.channel import ConnectionHandler
from gamed.core.lines import JsonLinesFactory
from gamed.core.metrics import Metrics
from gamed.core.settings import StreamLimits
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import websocket_factory


class EchoHandler(ConnectionHandler):
    """Replies {"echo": message}; errors as {"type": "error", ...}; records its life."""

    log: list = []

    def connection_made(self, channel):
        super().connection_made(channel)
        EchoHandler.log.append(("made", channel.transport))

    def message_received(self, message):
        if message.get("type") == "close":
            self.channel.close("asked")
            return
        if message.get("type") == "boom":
            raise RuntimeError("handler bug")
        self.channel.send({"echo": message})

    def connection_lost(self, reason):
        EchoHandler.log.append(("lost", self.channel.transport))


def make_endpoint(transport, clock=reactor, **limits):
    return StreamEndpoint("test", transport, EchoHandler, StreamLimits(**limits), clock,
                          Metrics().service("test"))


# -- unit: the lines adapter on a StringTransport ------------------------------------------

def lines_protocol(clock=None, **limits):
    clock = clock or task.Clock()
    endpoint = make_endpoint("lines", clock, **limits)
    proto = JsonLinesFactory(endpoint).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, endpoint, clock


def replies(transport):
    out = [json.loads(line) for line in transport.value().decode().splitlines()]
    transport.clear()
    return out


def test_lines_echo_with_crlf_and_split_packets():
    proto, transport, endpoint, _ = lines_protocol()
    proto.dataReceived(b'{"a": 1}\r\n{"b":')
    proto.dataReceived(b' 2}\n')
    assert replies(transport) == [{"echo": {"a": 1}}, {"echo": {"b": 2}}]
    assert endpoint.stats.messages_in == 2 and endpoint.stats.messages_out == 2


@pytest.mark.parametrize("line, code", [
    (b"not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (b"\xff\xfe", "malformed_json"),
    (b"", "malformed_json"),
    (b"[" * 20000, "malformed_json"),  # too deep for the decoder: not a crash
])
def test_lines_bad_input_gets_an_error_and_the_connection_stays(line, code):
    proto, transport, endpoint, _ = lines_protocol()
    proto.dataReceived(line + b"\n")
    [error] = replies(transport)
    assert error["type"] == "error" and error["error"] == code
    assert not transport.disconnecting
    proto.dataReceived(b'{"ok": true}\n')
    assert replies(transport) == [{"echo": {"ok": True}}]
    assert endpoint.stats.errors[code] == 1


def test_lines_oversize_line_gets_an_error_then_close():
    proto, transport, _, _ = lines_protocol(max_line_length=100)
    proto.dataReceived(b'{"x": "' + b"a" * 200)
    [error] = replies(transport)
    assert error["error"] == "line_too_long"
    assert transport.disconnecting


def test_lines_line_just_under_the_limit_is_accepted():
    proto, transport, _, _ = lines_protocol(max_line_length=100)
    body = b'{"x": "' + b"a" * 85 + b'"}'
    assert len(body) <= 100
    proto.dataReceived(body + b"\n")
    assert replies(transport) == [{"echo": {"x": "a" * 85}}]


def test_lines_rate_limit_refuses_then_closes_a_flood():
    clock = task.Clock()
    proto, transport, endpoint, _ = lines_protocol(clock, rate=10, burst=5,
                                                   flood_close_after=20)
    proto.dataReceived(b'{"n": 1}\n' * 5)
    assert len(replies(transport)) == 5
    proto.dataReceived(b'{"n": 2}\n' * 3)
    out = replies(transport)
    assert out == [{"type": "error", "error": "rate_limited",
                    "errorMessage": out[0]["errorMessage"]}]  # one error, not one per message
    clock.advance(1.0)  # 10 tokens back (capped at the burst of 5)
    proto.dataReceived(b'{"n": 3}\n')
    assert replies(transport) == [{"echo": {"n": 3}}]
    assert not transport.disconnecting
    proto.dataReceived(b'{"n": 4}\n' * 40)
    assert transport.disconnecting
    assert endpoint.stats.errors["flood"] == 1


def test_lines_occasional_bursts_far_apart_never_add_up_to_a_flood():
    clock = task.Clock()
    proto, transport, endpoint, _ = lines_protocol(clock, rate=10, burst=5,
                                                   flood_close_after=20)
    for _ in range(10):  # 10 bursts of 15 refused each: 150 in all, far past 20
        proto.dataReceived(b'{"n": 1}\n' * 20)
        clock.advance(1.0)  # the bucket refills (burst 5 at 10/s takes 0.5 s)
        replies(transport)
    assert not transport.disconnecting and "flood" not in endpoint.stats.errors
    assert endpoint.stats.errors["rate_limited"] >= 140  # each burst is mostly refused
    proto.dataReceived(b'{"n": 2}\n' * 30)  # but one that keeps coming is still a flood
    assert transport.disconnecting


def test_lines_idle_timeout_closes_quiet_connections_only():
    clock = task.Clock()
    proto, transport, _, _ = lines_protocol(clock, idle_timeout=10)
    clock.advance(6)
    proto.dataReceived(b'{"x": 1}\n')
    clock.advance(6)  # 6 s since the last message: still open
    assert not transport.disconnecting
    clock.advance(5)
    assert transport.disconnecting
    assert replies(transport)[-1]["error"] == "idle_timeout"


def test_a_handler_that_vouches_for_a_quiet_connection_restarts_its_idle_timeout():
    class Vouching(EchoHandler):
        answers = [True, True, False]
        asked = []

        def kept_alive(self):
            Vouching.asked.append(clock.seconds())
            return Vouching.answers.pop(0)

    clock = task.Clock()
    endpoint = StreamEndpoint("test", "lines", Vouching, StreamLimits(idle_timeout=10),
                              clock, Metrics().service("test"))
    proto = JsonLinesFactory(endpoint).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    clock.advance(5)
    proto.dataReceived(b'{"x": 1}\n')
    clock.advance(5)  # not quiet long enough: the handler is not asked
    assert Vouching.asked == []
    clock.advance(5)  # 10 s quiet: asked, vouches; then 10 s more, vouches again
    clock.advance(10)
    assert Vouching.asked == [15, 25] and not transport.disconnecting
    clock.advance(10)  # the third time it does not: closed as idle
    assert Vouching.asked == [15, 25, 35] and transport.disconnecting
    assert replies(transport)[-1]["error"] == "idle_timeout"


def test_lines_max_connections_refuses_politely():
    endpoint = make_endpoint("lines", task.Clock(), max_connections=1)
    factory = JsonLinesFactory(endpoint)
    first, second = factory.buildProtocol(None), factory.buildProtocol(None)
    t1, t2 = StringTransport(), StringTransport()
    first.makeConnection(t1)
    second.makeConnection(t2)
    assert not t1.disconnecting
    assert json.loads(t2.value())["error"] == "server_full" and t2.disconnecting
    assert endpoint.stats.connections_refused == 1
    first.connectionLost(failure.Failure(error.ConnectionDone()))
    assert endpoint.open == 0


def test_a_handler_exception_is_an_error_reply_not_a_disconnect():
    proto, transport, endpoint, _ = lines_protocol()
    proto.dataReceived(b'{"type": "boom"}\n{"after": 1}\n')
    out = replies(transport)
    assert out[0]["error"] == "internal_error" and out[1] == {"echo": {"after": 1}}
    assert not transport.disconnecting


# -- integration: real sockets ---------------------------------------------------------------

def _read_lines(sock, count, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while buf.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.splitlines()]


@pytest_twisted.ensureDeferred
async def test_lines_over_loopback():
    EchoHandler.log.clear()
    endpoint = make_endpoint("lines")
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        JsonLinesFactory(endpoint))
    try:
        address = port.getHost()

        def client():
            with socket.create_connection((address.host, address.port)) as sock:
                sock.sendall(b'{"hello": "w\\u00f6rld"}\n{bad\n')
                return _read_lines(sock, 2)

        got = await _in_thread(client)
        assert got[0] == {"echo": {"hello": "w\u00f6rld"}}
        assert got[1]["error"] == "malformed_json"
        await _until(lambda: ("lost", "lines") in EchoHandler.log)
        assert endpoint.open == 0
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_websocket_over_loopback_any_path_and_binary_refused():
    import websocket  # websocket-client

    endpoint = make_endpoint("websocket", max_line_length=1000)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        websocket_factory(endpoint))
    try:
        url = "ws://127.0.0.1:%d/any/path?x=1" % port.getHost().port

        def client():
            ws = websocket.create_connection(url, timeout=5)
            ws.send('{"a": 1}')
            first = json.loads(ws.recv())
            ws.send_binary(b'{"b": 2}')
            second = json.loads(ws.recv())
            ws.send("nope")
            third = json.loads(ws.recv())
            ws.send('{"big": "' + "x" * 2000 + '"}')
            fourth = json.loads(ws.recv())
            try:
                opcode, _ = ws.recv_data(control_frame=True)
                closed = opcode == websocket.ABNF.OPCODE_CLOSE
            except Exception:
                closed = True
            return first, second, third, fourth, closed

        first, second, third, fourth, closed = await _in_thread(client)
        assert first == {"echo": {"a": 1}}
        assert second["error"] == "binary"
        assert third["error"] == "malformed_json"
        assert fourth["error"] == "line_too_long"
        assert closed
    finally:
        await port.stopListening()


def _in_thread(func):
    from twisted.internet import threads

    return threads.deferToThread(func)


async def _until(predicate, timeout=5.0):
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not reached")
        await task.deferLater(reactor, 0.01, lambda: None)
        waited += 0.01
    return defer.succeed(None)


class FloodingHandler(ConnectionHandler):
    """Sends `count` frames of `size` bytes when asked: a reader that stops reading fills
    the send buffer."""

    lost: list = []

    def message_received(self, message):
        for _ in range(message["count"]):
            self.channel.send_text("x" * message["size"])

    def connection_lost(self, reason):
        FloodingHandler.lost.append(reason)


@pytest_twisted.ensureDeferred
async def test_a_reader_that_stops_reading_is_dropped_not_buffered_forever():
    FloodingHandler.lost.clear()
    stats = Metrics().service("test")
    endpoint = StreamEndpoint("test", "lines", FloodingHandler,
                              StreamLimits(max_send_buffer=256 * 1024), reactor, stats)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        JsonLinesFactory(endpoint))
    sock = socket.create_connection(("127.0.0.1", port.getHost().port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        # 64 MiB requested; the client never reads
        sock.sendall(b'{"count": 1024, "size": 65536}\n')
        await _until(lambda: FloodingHandler.lost, timeout=10)
        assert stats.errors.get("slow_reader") == 1
        assert endpoint.open == 0
    finally:
        sock.close()
        await port.stopListening()


def test_undecodable_lines_are_rate_limited_and_a_flood_of_them_closed():
    proto, transport, endpoint, _ = lines_protocol(task.Clock(), rate=1, burst=2,
                                                   flood_close_after=3)
    proto.dataReceived(b"\xff\n" * 1000)
    out = replies(transport)
    assert len(out) < 10  # not one error per line: no amplification
    assert [e["error"] for e in out][-1] == "flood" and transport.disconnecting
    assert endpoint.stats.messages_in >= 6


def test_a_websocket_pong_counts_as_activity_and_pings_are_configured():
    """A browser tab that only listens answers our pings by itself: that keeps it from the
    idle timeout (autobahn's timers round to whole seconds, so this is not timed over a
    real socket), and a missing pong closes a dead connection."""
    clock = task.Clock()
    endpoint = make_endpoint("websocket", clock, idle_timeout=300.0, ping_interval=30.0)
    factory = websocket_factory(endpoint)
    assert factory.autoPingInterval == 30.0 and factory.autoPingTimeout == 30.0
    quiet = websocket_factory(make_endpoint("websocket", clock, ping_interval=0.0))
    assert quiet.autoPingInterval == 0
    proto = factory.buildProtocol(None)

    class Connection:
        last_activity = 0.0

    proto.connection = Connection()
    clock.advance(250.0)
    proto.onPong(b"")
    assert proto.connection.last_activity == 250.0


# -- a client that leaves is not an error ----------------------------------------------------

HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # masked (with zeros) close, code 1000


class TcpLikeTransport(StringTransport):
    """autobahn unregisters its producer whether or not one was registered, as TCP allows."""

    def unregisterProducer(self):
        self.producer = None


def test_a_send_after_the_peers_close_frame_is_dropped_quietly():
    # autobahn leaves OPEN at the peer's close frame but calls onClose only when TCP is
    # gone: a reply sent in between (a login answered from the database) must not raise
    from gamed.core.testing import ErrorLog

    clock = task.Clock()
    endpoint = make_endpoint("websocket", clock)
    proto = websocket_factory(endpoint).buildProtocol(None)
    transport = TcpLikeTransport()
    proto.makeConnection(transport)
    proto.dataReceived(HANDSHAKE)
    channel = proto.connection
    assert channel is not None and b"101 Switching Protocols" in transport.value()
    transport.clear()
    with ErrorLog() as errors:
        proto.dataReceived(CLOSE_FRAME)
        assert not channel.closed  # onClose has not run yet: the TCP close is pending
        channel.send({"late": "login_response"})
        channel.send_text('{"late":"elo_update"}')
        from gamed.core.channel import PreparedText
        channel.send_prepared(PreparedText('{"late":"relayed"}'))
        channel.close("done")
        proto.connectionLost(failure.Failure(error.ConnectionDone()))
    assert errors.lines() == []
    assert b"late" not in transport.value()
    assert endpoint.open == 0


def test_a_send_after_a_lines_peer_has_gone_is_dropped_quietly():
    from gamed.core.testing import ErrorLog

    proto, transport, endpoint, _ = lines_protocol()
    channel = proto.connection
    with ErrorLog() as errors:
        transport.loseConnection()
        channel.send({"late": 1})
        proto.connectionLost(failure.Failure(error.ConnectionDone()))
        channel.send({"later": 2})
    assert errors.lines() == []
    assert endpoint.open == 0


@pytest_twisted.ensureDeferred
async def test_websocket_invalid_utf8_is_refused_and_an_endless_handshake_cut_short():
    import socket

    endpoint = make_endpoint("websocket")
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        websocket_factory(endpoint))
    number = port.getHost().port
    handshake = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")

    def frame(payload):  # masked with a zero mask
        return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload

    def client():
        with socket.create_connection(("127.0.0.1", number), timeout=5) as sock:
            sock.sendall(handshake + b"\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(4096)
            sock.sendall(frame(b'"\xff\xfe"') + frame(b'{"a": 1}'))
            data = b""
            while data.count(b"}") < 2:
                data += sock.recv(4096)
        with socket.create_connection(("127.0.0.1", number), timeout=5) as sock:
            refused = b""
            try:
                sock.sendall(handshake + b"X: " + b"h" * 200000 + b"\r\n\r\n")
            except OSError:
                pass
            try:
                while chunk := sock.recv(4096):
                    refused += chunk
            except OSError:
                pass
        return data, refused

    try:
        data, refused = await _in_thread(client)
        assert b'"error":"malformed_json"' in data and b'"echo":{"a":1}' in data, data
        assert refused.startswith(b"HTTP/1.1 431"), refused
        assert endpoint.stats.errors == {"malformed_json": 1, "bad_handshake": 1}
    finally:
        await port.stopListening()


def test_a_browser_handshake_offering_compression_is_accepted_without_it():
    """Browsers offer permessage-deflate; the offer is declined and the handshake done
    (the per-listener protocol class must keep the accept function a plain function)."""
    proto = websocket_factory(make_endpoint("websocket", task.Clock())).buildProtocol(None)
    transport = TcpLikeTransport()
    proto.makeConnection(transport)
    proto.dataReceived(HANDSHAKE.replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; "
                     b"client_max_window_bits\r\n\r\n"))
    reply = transport.value().decode("latin-1")
    assert reply.startswith("HTTP/1.1 101") and "permessage-deflate" not in reply
