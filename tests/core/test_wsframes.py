"""The WebSocket adapter's one-step frame reader (JsonWebSocketProtocol.processData) against
autobahn's own: on any stream of frames, cut anywhere, the handler gets the same messages,
the peer the same replies and close, and autobahn the same state and traffic counts."""

import json
import os
import struct

import hypothesis.strategies as st
from autobahn.twisted.websocket import WebSocketServerProtocol
from hypothesis import given, settings
from twisted.internet import task
from twisted.internet.testing import StringTransport

from gamed.core.channel import ConnectionHandler
from gamed.core.metrics import Metrics
from gamed.core.settings import StreamLimits
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import unmask, websocket_factory

HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
LIMIT = 300


class TcpLikeTransport(StringTransport):
    def unregisterProducer(self):
        self.producer = None


class Recorder(ConnectionHandler):
    """Echoes every object; closes on {"close": ...}: the read must stop where it closed."""

    def connection_made(self, channel):
        super().connection_made(channel)
        self.got = []

    def message_received(self, message):
        self.got.append(message)
        if "close" in message:
            self.channel.close("asked")
        else:
            self.channel.send({"echo": message})


def open_protocol(autobahn_only: bool):
    endpoint = StreamEndpoint("test", "websocket", Recorder,
                              StreamLimits(max_line_length=LIMIT, rate=1e9, burst=10 ** 9,
                                           ping_interval=0), task.Clock(),
                              Metrics().service("test"))
    factory = websocket_factory(endpoint)
    if autobahn_only:
        factory.protocol = type("AutobahnOnly", (factory.protocol,),
                                {"processData": WebSocketServerProtocol.processData})
    proto = factory.buildProtocol(None)
    transport = TcpLikeTransport()
    proto.makeConnection(transport)
    proto.dataReceived(HANDSHAKE)
    transport.clear()
    return proto, transport, endpoint


def frame(fin=True, rsv=0, opcode=1, masked=True, payload=b"", long_form=False,
          mask=b"\x12\x34\x56\x78"):
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126 and not long_form:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if masked:
        return head + mask + unmask(payload, mask)
    return head + payload


json_objects = st.dictionaries(st.sampled_from(["a", "b", "type", "close", "s\u00e9"]),
                               st.integers() | st.text(max_size=40), max_size=4)
payloads = (json_objects.map(lambda o: json.dumps(o).encode())
            | st.binary(max_size=40)
            | st.sampled_from([b"", b"[1]", b'"\xff"', b"{}", b" {} ", b"x" * 400,
                               b"\xe2\x82", b"\x03\xe8"])
            # at the size limit and just past it
            | st.integers(LIMIT - 1, LIMIT + 2).map(lambda n: b'{"a":"' + b"y" * (n - 8) + b'"}'))
frames = st.builds(
    frame,
    fin=st.booleans() | st.just(True),
    rsv=st.sampled_from([0, 0, 0, 0, 1, 4]),
    opcode=st.sampled_from([1, 1, 1, 1, 0, 2, 8, 9, 10, 3, 11]),
    masked=st.sampled_from([True, True, True, False]),
    payload=payloads,
    long_form=st.sampled_from([False, False, False, True]),
    mask=st.binary(min_size=4, max_size=4))


def observe(proto, transport, endpoint):
    handler = proto.connection.handler if proto.connection is not None else None
    stats = proto.trafficStats
    return (transport.value(), proto.state, proto.data, transport.disconnecting,
            dict(endpoint.stats.errors), endpoint.stats.messages_in,
            endpoint.stats.messages_out, stats.incomingOctetsWebSocketLevel,
            stats.incomingOctetsAppLevel, stats.incomingWebSocketFrames,
            stats.incomingWebSocketMessages, handler.got if handler else None)


@settings(max_examples=400, deadline=None)
@given(stream=st.lists(frames, max_size=12).map(b"".join), cuts=st.lists(st.integers(0, 2000)))
def test_the_one_step_reader_reads_any_stream_as_autobahn_does(stream, cuts):
    ours = open_protocol(autobahn_only=False)
    theirs = open_protocol(autobahn_only=True)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for start, end in zip(points, points[1:]):
        for proto, _, _ in (ours, theirs):
            proto.dataReceived(stream[start:end])
    assert observe(*ours) == observe(*theirs)


def test_sixteen_frames_in_one_read_are_sixteen_messages_and_one_write_each():
    proto, transport, endpoint = open_protocol(autobahn_only=False)
    proto.dataReceived(b"".join(frame(payload=b'{"n":%d}' % n, mask=os.urandom(4))
                                for n in range(16)))
    assert proto.connection.handler.got == [{"n": n} for n in range(16)]
    assert transport.value().count(b'"echo"') == 16 and proto.data == b""


def test_unmask_is_the_xor_of_the_repeated_mask():
    payload, mask = os.urandom(1001), os.urandom(4)
    assert unmask(payload, mask) == bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert unmask(b"", mask) == b""


def traffic(proto):
    stats = proto.trafficStats
    return (stats.outgoingWebSocketMessages, stats.outgoingOctetsAppLevel,
            stats.outgoingOctetsWebSocketLevel, stats.outgoingOctetsWireLevel)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=300)
                     | st.integers(65530, 65540).map(lambda n: "\u00e9" * (n // 2) + "a" * (n % 2)),
                     max_size=4))
def test_a_reply_is_framed_and_counted_as_autobahns_send_message_does(texts):
    texts = [t for t in texts if not any("\ud800" <= c <= "\udfff" for c in t)]
    ours, ours_transport, _ = open_protocol(autobahn_only=False)
    theirs, theirs_transport, _ = open_protocol(autobahn_only=False)
    theirs._plain_frames = False  # autobahn's sendMessage
    for text in texts:
        ours.connection.send_text(text)
        theirs.connection.send_text(text)
    assert ours_transport.value() == theirs_transport.value()
    assert traffic(ours) == traffic(theirs)
