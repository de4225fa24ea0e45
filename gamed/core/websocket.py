"""The WebSocket adapter (autobahn): one JSON object per text frame, any request path."""

from __future__ import annotations

import types

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.logger import Logger

from gamed.core.channel import BadFrame, PreparedText, websocket_text_frame
from gamed.core.transport import (READS, Connection, StreamEndpoint, direct_writer, peer_of,
                                  refusal_line)

log = Logger(namespace="gamed.transport")
OPEN = WebSocketProtocol.STATE_OPEN


#: bytes of opening handshake (the HTTP request) accepted before it is refused: autobahn
#: would buffer an endless header (copying it on every read) until the handshake timeout
MAX_HANDSHAKE = 65536

#: first byte of a final, unfragmented text frame (FIN, no RSV bit, opcode 1)
FINAL_TEXT = 0x81


def unmask(payload: bytes, mask: bytes) -> bytes:
    """A client frame's payload XORed with its 4-byte mask (RFC 6455 5.3), as one integer
    operation: cheaper for a game's small frames than a native masker made per frame."""
    size = len(payload)
    key = (mask * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little")


class JsonWebSocketProtocol(WebSocketServerProtocol):
    connection: Connection | None = None
    refused_full = False
    refused_handshake = False

    def connectionMade(self):
        super().connectionMade()
        # autobahn queues only chopped or synchronous sends, which gamed never makes: an
        # empty tuple reads as an empty queue, where a deque cost 760 bytes a connection
        self.send_queue = ()

    def dataReceived(self, data):
        if self.refused_handshake:
            return
        if (self.state == self.STATE_CONNECTING
                and len(self.data) + len(data) > MAX_HANDSHAKE):
            self.refused_handshake = True
            self.data = b""
            self.failHandshake("request header too large", 431)
            return
        # the relayed frames a read causes go out once per peer at its end; autobahn's
        # Twisted dataReceived only adds a debug line whose arguments it formats on every
        # read (hltype: a third of a small message's cost), so its core is called directly
        READS.handle(self._dataReceived, data)

    def processData(self):
        """The common frame, read in one step: a complete, final, masked text frame of at
        most `max_line_length` bytes, between messages, while OPEN, goes straight to
        `onMessage` with autobahn's traffic counts and ping bookkeeping. Everything else
        (control frames, fragments, partial or oversize frames, protocol errors, the
        closing handshake, autobahn's optional logging and listeners) is left to autobahn's
        `processData`, which reads such a frame the same way in seven calls and three
        objects (tests/core/test_wsframes.py checks they agree on any input)."""
        if (self.state != OPEN or self.current_frame is not None or self.inside_message
                or self.too_big or self.logFrames or self.trackedTimings
                or self._listeners is not None or not self.applyMask):
            return super().processData()
        data = self.data
        available = len(data)
        limit = self.factory.endpoint.limits.max_line_length
        stats = self.trafficStats
        position = 0
        while available - position >= 6 and data[position] == FINAL_TEXT:
            length = data[position + 1]
            if length < 0x80:
                break  # unmasked: autobahn refuses it
            length &= 0x7F
            if length < 126:
                start = position + 6
            elif length == 126:
                start = position + 8
                if start > available:
                    break
                length = (data[position + 2] << 8) | data[position + 3]
                if length < 126:
                    break  # not the shortest length encoding: autobahn refuses it
            else:
                break  # 8-byte lengths are past any limit gamed sets
            end = start + length
            if length > limit or end > available:
                break
            payload = unmask(data[start:end], data[start - 4:start]) if length else b""
            position = end
            stats.incomingOctetsWebSocketLevel += length
            stats.incomingOctetsAppLevel += length
            stats.incomingWebSocketFrames += 1
            stats.incomingWebSocketMessages += 1
            if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                self._cancelAutoPingTimeoutCall()
            self.onMessage(payload, False)
            if self.state != OPEN:
                break
        if not position:
            return super().processData()
        self.data = data = data[position:]
        return len(data) > 0

    def onConnect(self, request):
        # any path is accepted; nothing to negotiate
        return None

    def onOpen(self):
        # autobahn keeps the handshake's texts "for the testsuite": an idle player
        # would carry them for hours
        self.http_request_data = self.http_response_data = None
        # autobahn sets TCP_NODELAY before it reads the factory option: set it here
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        endpoint: StreamEndpoint = self.factory.endpoint
        if endpoint.full():
            endpoint.stats.connections_refused += 1
            self.refused_full = True
            text = refusal_line(endpoint.handler_factory, "server_full",
                                "the server is full, try again later")
            if text is not None:
                self.sendMessage(text.encode("utf-8"), isBinary=False)
            self.sendClose(code=4013, reason="server full")
            return
        self._send_now = direct_writer(self.transport)
        # a reply is framed here (as sendMessage would, without its per-frame Python)
        # unless an autobahn option that changes the frames or logs them is on
        self._plain_frames = not (self.logFrames or self.logOctets or self.trackedTimings
                                  or self.maskServerFrames or self.autoFragmentSize
                                  or self._perMessageCompress is not None)
        self.connection = Connection(endpoint, peer_of(self.transport), self._write,
                                     self._close, self.transport,
                                     wire_bytes=PreparedText.websocket_bytes,
                                     write_wire=self._write_frames)
        self.connection.start()

    # Between the peer's close frame (or a dropped connection) and onClose, autobahn's
    # state is no longer OPEN and sendMessage raises: a client that leaves is normal, so
    # what is sent to it then is dropped with a debug line.
    def _write(self, text: str) -> None:
        if self.state != OPEN:
            self._dropped()
            return
        payload = text.encode("utf-8")
        if not self._plain_frames:
            self.sendMessage(payload, isBinary=False)
            return
        frame = websocket_text_frame(payload)
        stats = self.trafficStats  # what sendMessage counts
        stats.outgoingWebSocketMessages += 1
        stats.outgoingOctetsAppLevel += len(payload)
        stats.outgoingOctetsWebSocketLevel += len(payload)
        stats.outgoingOctetsWireLevel += len(frame)
        self._send_now(frame)

    def _write_frames(self, data: bytes) -> None:
        """Complete text frames (`PreparedText.websocket_bytes`, joined): what autobahn's
        `sendPreparedMessage` does for them, without its per-call debug formatting."""
        if self.state != OPEN:
            self._dropped()
            return
        self.transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)
        if self.logOctets:
            self.logTxOctets(data, False)

    def sendData(self, data, sync=False, chopsize=None):
        # autobahn's own frames (close, ping, pong) and replies follow the relayed frames
        # gathered before them (see transport.ReadBatch)
        connection = self.connection
        if connection is not None and connection.outbox is not None:
            connection.flush()
        super().sendData(data, sync, chopsize)

    def _dropped(self) -> None:
        connection = self.connection
        if connection is not None:
            log.debug("{service}: {peer} has gone: a frame to it dropped",
                      service=connection.endpoint.service, peer=connection.peer)

    def _close(self) -> None:
        self.sendClose(code=1000)

    # Oversize messages: autobahn's own limits abort the TCP connection, losing our error
    # reply, so the limit is enforced here: the frames are discarded as they arrive, the
    # error is sent, then a clean close (4009).
    too_big = False

    def onMessageFrameBegin(self, length):
        if self.too_big:
            return
        super().onMessageFrameBegin(length)
        limit = self.factory.endpoint.limits.max_line_length
        if self.message_data_total_length > limit:
            self.too_big = True
            self.frame_data = None
            if self.connection is not None:
                self.connection.refuse(BadFrame("line_too_long",
                                                "message longer than %d bytes" % limit))
                self.connection.closed = True
            self.sendClose(code=4009, reason="message too big")

    def onMessageFrameData(self, payload):
        if not self.too_big:
            super().onMessageFrameData(payload)

    def onMessageFrameEnd(self):
        if not self.too_big:
            super().onMessageFrameEnd()

    def onMessageEnd(self):
        if self.too_big:
            self.message_data = None
            return
        super().onMessageEnd()

    def onMessage(self, payload, isBinary):
        connection = self.connection
        if connection is None:
            return
        if isBinary:
            connection.bad_frame_received(BadFrame(
                "binary", "binary frames are not accepted: send JSON text"))
            return
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            # refused like a line that is not UTF-8 (counted, answered, rate-limited);
            # autobahn's own check would fail the connection with a log line per peer
            connection.bad_frame_received(BadFrame("malformed_json",
                                                   "the frame is not valid UTF-8"))
            return
        connection.frame_received(text)

    def failHandshake(self, reason, code=400, responseHeaders=None):
        # not a WebSocket client (junk, a scanner, plain HTTP): counted like bad input
        self.factory.endpoint.stats.error("bad_handshake")
        super().failHandshake(reason, code, responseHeaders)

    def onPong(self, payload):
        # the browser answers our pings by itself: the peer is there and listening
        if self.connection is not None:
            self.connection.last_activity = self.factory.endpoint.clock.seconds()

    def onClose(self, wasClean, code, reason):
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.stop(reason or "closed (%s)" % code)


def _as_class_attribute(value):
    return staticmethod(value) if isinstance(value, types.FunctionType) else value


def websocket_factory(endpoint: StreamEndpoint) -> WebSocketServerFactory:
    factory = WebSocketServerFactory()
    factory.protocol = JsonWebSocketProtocol
    factory.endpoint = endpoint
    ping = endpoint.limits.ping_interval
    factory.setProtocolOptions(
        # limits enforced by the protocol (see onMessageFrameBegin)
        maxMessagePayloadSize=0,
        maxFramePayloadSize=0,
        autoPingInterval=ping,
        autoPingTimeout=ping,
        openHandshakeTimeout=10,
        closeHandshakeTimeout=2,
        # game frames are small and latency matters
        tcpNoDelay=True,
        # text is decoded (and refused if it is not UTF-8) in onMessage
        utf8validateIncoming=False,
        perMessageCompressionAccept=lambda offers: None,
    )
    # autobahn copies its ~40 options onto every connection unless the protocol class has
    # them: a class per listener that holds them saves that per connection (2 KB of a
    # connection's dict, a fifth of an idle WebSocket player's memory)
    # (a function option, perMessageCompressionAccept, stays a plain function: as a class
    # attribute it would become a method and get the protocol as its first argument; a
    # browser's permessage-deflate offer then failed every handshake)
    options = {name: _as_class_attribute(getattr(factory, name))
               for name in JsonWebSocketProtocol.CONFIG_ATTRS}
    factory.protocol = type("JsonWebSocketProtocol", (JsonWebSocketProtocol,), options)
    return factory
