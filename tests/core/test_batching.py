"""Prepared frames gathered during a read (transport.ReadBatch): one write per peer per read,
with the same order, the same checks and the same outcome as writing frame by frame."""

import hypothesis.strategies as st
from hypothesis import given, settings
from twisted.internet import task
from twisted.internet.testing import StringTransport

from gamed.core.channel import ConnectionHandler, PreparedText
from gamed.core.metrics import Metrics
from gamed.core.settings import StreamLimits
from gamed.core.transport import READS, Connection, StreamEndpoint


class Quiet(ConnectionHandler):
    def message_received(self, message):
        pass


class FakeTcp:
    """What Connection reads of a Twisted TCP transport: the unsent bytes and write()."""

    def __init__(self, unsent: int):
        self.dataBuffer = b"x" * unsent
        self.offset = 0
        self._tempDataLen = 0
        self.writes: list = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self._tempDataLen += len(data)

    def abortConnection(self) -> None:
        self.aborted = True


def connection(unsent: int, cap: int):
    stats = Metrics().service("test")
    endpoint = StreamEndpoint("test", "lines", Quiet, StreamLimits(max_send_buffer=cap),
                              task.Clock(), stats)
    tcp = FakeTcp(unsent)
    lost = []
    conn = Connection(endpoint, "peer", lambda text: tcp.write(text.encode() + b"\n"),
                      lambda: lost.append(True), tcp, wire_bytes=PreparedText.line_bytes,
                      write_wire=tcp.write)
    conn.start()
    return conn, tcp, stats, lost


def outcome(conn, tcp, stats, lost):
    return (b"".join(tcp.writes), tcp.aborted, bool(lost), conn.closed,
            stats.messages_out, dict(stats.errors))


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), max_size=20), unsent=st.integers(0, 3000),
       cap=st.integers(0, 3000), control_at=st.none() | st.integers(0, 20))
def test_a_read_batch_has_the_outcome_of_frame_by_frame_writes(sizes, unsent, cap, control_at):
    """Back-pressure as before: frame k goes if the bytes unsent before it are within the
    cap; past it the reader is dropped; a reply in between keeps its place."""
    frames = [PreparedText("y" * size) for size in sizes]

    def sends(conn):
        for index, frame in enumerate(frames):
            if index == control_at:
                conn.send_text("control")
            conn.send_prepared(frame)

    one_by_one = connection(unsent, cap)
    sends(one_by_one[0])
    batched = connection(unsent, cap)
    READS.handle(lambda _: sends(batched[0]), b"")
    assert outcome(*batched) == outcome(*one_by_one)


def test_a_read_makes_one_write_per_peer_and_a_close_sends_what_came_before():
    conn, tcp, stats, lost = connection(0, 1 << 20)
    other, other_tcp, _, _ = connection(0, 1 << 20)

    def read(_):
        for n in range(16):
            frame = PreparedText('{"n":%d}' % n)
            conn.send_prepared(frame)
            other.send_prepared(frame)
        assert tcp.writes == [] and other_tcp.writes == []  # gathered until the read ends
        other.close("bye")  # a close writes what was sent before it, then closes
        other.send_prepared(PreparedText('{"late":1}'))

    READS.handle(read, b"")
    assert tcp.writes == [b"".join(b'{"n":%d}\n' % n for n in range(16))]
    assert other_tcp.writes == tcp.writes and lost == []
    assert stats.messages_out == 16 and READS.queued == [] and READS.depth == 0


def test_outside_a_read_a_prepared_frame_is_written_at_once():
    conn, tcp, stats, _ = connection(0, 1 << 20)
    conn.send_prepared(PreparedText("{}"))
    assert tcp.writes == [b"{}\n"] and stats.messages_out == 1


def test_a_failing_read_still_writes_what_it_gathered():
    conn, tcp, _, _ = connection(0, 1 << 20)

    def read(_):
        conn.send_prepared(PreparedText("{}"))
        raise ValueError("boom")

    try:
        READS.handle(read, b"")
    except ValueError:
        pass
    assert tcp.writes == [b"{}\n"] and READS.depth == 0


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=70000) | st.text(max_size=300))
def test_the_websocket_wire_form_is_autobahns_prepared_frame(text):
    from autobahn.twisted.websocket import WebSocketServerFactory

    expected = WebSocketServerFactory().prepareMessage(text.encode("utf-8", "surrogatepass"),
                                                       isBinary=False).payloadHybi
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # not sendable (a lone surrogate): encode() refuses it before any frame
    assert PreparedText(text).websocket_bytes() == expected
