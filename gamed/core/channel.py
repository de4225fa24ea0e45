"""The transport-neutral contract between a connection and a game's message handler.

A transport adapter (JSON lines, WebSocket) owns the socket; it builds one handler per
connection through a `HandlerFactory` and feeds it decoded frames. The handler answers
through the `Channel` it was given and never sees the transport. The same handler class
therefore serves every stream transport of a service.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Protocol

import attrs


class Channel(Protocol):
    """What a handler may do with its connection."""

    #: "host:port" of the peer, for logs and per-address throttling.
    peer: str
    #: the transport's name ("lines", "websocket"), for logs and metrics.
    transport: str

    def send(self, message: dict) -> None:
        """Encode one JSON object and send it as one frame."""

    def send_text(self, text: str) -> None:
        """Send one already-encoded frame (no newline; the adapter frames it)."""

    def close(self, reason: str = "") -> None:
        """Close after flushing what was sent; `reason` goes to the log."""

    def buffered(self) -> int:
        """Bytes written but not yet accepted by the kernel (for back-pressure)."""

    def send_prepared(self, frame: "PreparedText") -> None:
        """Send a frame prepared once for many connections (relays, broadcasts)."""

    def refuse(self, problem: "BadFrame") -> None:
        """Count a refused frame and answer it through the handler's `frame_refused`."""


#: json.dumps with these options builds a JSONEncoder per call: one, built once, does the
#: same (the same text, the same errors) for about a microsecond less per message
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(message: Any) -> str:
    """The one JSON encoding every service sends: compact, UTF-8, no NaN."""
    return _ENCODER.encode(message)


class PreparedText:
    """One outgoing frame shared by many connections: each transport's wire form is built
    once (the line's bytes; the WebSocket frame with its header) and reused."""

    __slots__ = ("text", "_line", "_ws_frame")

    def __init__(self, text: str):
        self.text = text
        self._line = None
        self._ws_frame = None

    def line_bytes(self) -> bytes:
        """The JSON-lines wire form: the text in UTF-8 and its newline."""
        line = self._line
        if line is None:
            line = self._line = self.text.encode("utf-8") + b"\n"
        return line

    def websocket_bytes(self) -> bytes:
        """The WebSocket wire form: `websocket_text_frame` of the text."""
        frame = self._ws_frame
        if frame is None:
            frame = self._ws_frame = websocket_text_frame(self.text.encode("utf-8"))
        return frame


def websocket_text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 5.2): what a server sends, as autobahn's
    `sendMessage` and `prepareMessage` frame it (tests compare them)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


@attrs.frozen
class BadFrame:
    """Why a received frame could not be used; handed to `ConnectionHandler.frame_refused`."""

    code: str  # "malformed_json", "not_an_object", "line_too_long", "rate_limited", "binary"
    detail: str


class ConnectionHandler:
    """Base class of every game's per-connection handler.

    Subclasses implement `message_received` (a decoded JSON object) and `error_message`
    (the protocol's own error shape). `text_received` may be overridden by a handler that
    needs the raw frame (the rooms relay forwards frames without decoding them).
    """

    channel: Channel

    def connection_made(self, channel: Channel) -> None:
        self.channel = channel

    def text_received(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError as exc:
            self.channel.refuse(BadFrame("malformed_json", "not valid JSON: %s" % exc))
            return
        except RecursionError:
            self.channel.refuse(BadFrame("malformed_json", "JSON nested too deeply"))
            return
        if not isinstance(message, dict):
            self.channel.refuse(BadFrame("not_an_object", "expected a JSON object"))
            return
        self.message_received(message)

    def message_received(self, message: dict) -> None:
        raise NotImplementedError

    def frame_refused(self, problem: BadFrame) -> None:
        """A frame was refused before dispatch: answer in the protocol's error shape."""
        self.channel.send(self.error_message(problem.code, problem.detail, None))

    def error_message(self, code: str, detail: str, request: Optional[dict]) -> dict:
        """The protocol's error reply for `request` (None when it could not be decoded)."""
        return {"type": "error", "error": code, "errorMessage": detail}

    def kept_alive(self) -> bool:
        """Asked when the peer has sent nothing for `idle_timeout`: True if the handler
        knows the connection is in use all the same (a relay player receiving its room's
        frames), and the idle timeout starts over. By default a quiet peer is idle."""
        return False

    def connection_lost(self, reason: str) -> None:
        """The connection is gone (closed by either side, idle, flood)."""


HandlerFactory = Callable[[], ConnectionHandler]
