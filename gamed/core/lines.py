"""The JSON-lines adapter: one UTF-8 JSON object per "\\n"-terminated line over a stream."""

from __future__ import annotations

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver

from gamed.core.channel import BadFrame, PreparedText
from gamed.core.transport import (READS, Connection, StreamEndpoint, accept_stream,
                                  direct_writer, peer_of, refusal_line)


class JsonLinesProtocol(LineReceiver):
    delimiter = b"\n"

    def __init__(self, endpoint: StreamEndpoint):
        self.endpoint = endpoint
        self.MAX_LENGTH = endpoint.limits.max_line_length
        self.connection: Connection | None = None

    def connectionMade(self):
        endpoint = self.endpoint
        if not accept_stream(endpoint, self.transport, self._server_full):
            return
        self._send_now = direct_writer(self.transport)
        self.connection = Connection(endpoint, peer_of(self.transport), self._write,
                                     self.transport.loseConnection, self.transport,
                                     wire_bytes=PreparedText.line_bytes,
                                     write_wire=self.transport.write)
        self.connection.start()

    def dataReceived(self, data):
        # the relayed frames a read causes go out once per peer at its end
        READS.handle(self._split_lines, data)

    _split_lines = LineReceiver.dataReceived

    def _server_full(self) -> bytes | None:
        line = refusal_line(self.endpoint.handler_factory, "server_full",
                            "the server is full, try again later")
        return line.encode("utf-8") + b"\n" if line is not None else None

    def _write(self, text: str) -> None:
        self._send_now(text.encode("utf-8") + b"\n")

    def lineReceived(self, line: bytes):
        connection = self.connection
        if connection is None:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            connection.bad_frame_received(BadFrame("malformed_json",
                                                   "the line is not valid UTF-8"))
            return
        connection.frame_received(text)

    def lineLengthExceeded(self, line):
        if self.connection is not None:
            self.connection.refuse_and_close(
                "line_too_long", "line longer than %d bytes" % self.MAX_LENGTH)
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason=protocol.connectionDone):
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.stop(reason.getErrorMessage())


class JsonLinesFactory(protocol.Factory):
    def __init__(self, endpoint: StreamEndpoint):
        self.endpoint = endpoint

    def buildProtocol(self, addr):
        proto = JsonLinesProtocol(self.endpoint)
        proto.factory = self
        return proto
