"""The rooms wire shapes: lobby requests (seed and real-client names) and server messages.

Requests are read leniently where the seed and the real client differ (`requestId` /
`request_id` / `responseId`, `isHost` / `host`) and strictly where types matter; a bad
field raises `BadRequest` with the error code to send back. The fields are checked by
hand rather than structured with cattrs: its default str/int hooks would coerce (5 -> "5",
True -> 1) where the lobby must refuse, and each field needs its own wire error code.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any, Optional

import attrs

MAX_USERNAME = 32


class BadRequest(Exception):
    """A request the lobby cannot read; `code` is the wire error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class LoginDetails:
    """The profile a player logs in with (the PlayerObject less what the server decides)."""

    username: str
    avatar: int = 0
    color: int = 0
    border_color: int = 0


def _int_field(details: dict, name: str) -> int:
    value = details.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("invalid_details", "details.%s must be an integer" % name)
    if not -(2 ** 53) <= value <= 2 ** 53:
        raise BadRequest("invalid_details", "details.%s is out of range" % name)
    return value


ZERO_WIDTH_JOINER = "\u200d"


def _visible(char: str) -> bool:
    """Not a control, format (zero-width, bidi override), surrogate, private-use or
    unassigned character, nor a line or paragraph separator: names that look alike must
    be alike, or name_conflict could be dodged with an invisible character."""
    if char == ZERO_WIDTH_JOINER:  # joins emoji sequences (a person and a laptop...)
        return True
    category = unicodedata.category(char)
    return category[0] != "C" and category not in ("Zl", "Zp")


def login_details(request: dict) -> LoginDetails:
    """The PlayerObject a client logs in with; `id` and `host`/`isHost` are the server's."""
    details = request.get("details")
    if not isinstance(details, dict):
        raise BadRequest("invalid_details", "login needs a details object with a username")
    username = details.get("username")
    if not isinstance(username, str) or not username.strip():
        raise BadRequest("invalid_name", "details.username must be a non-empty string")
    # one spelling for one look: "é" and "e" + combining acute compare alike
    username = unicodedata.normalize("NFC", username.strip())
    if len(username) > MAX_USERNAME or not all(map(_visible, username)):
        raise BadRequest("invalid_name", "details.username must be 1 to %d printable characters"
                         % MAX_USERNAME)
    return LoginDetails(username, _int_field(details, "avatar"), _int_field(details, "color"),
                        _int_field(details, "border_color"))


def invite_of(request: dict) -> Any:
    invite = request.get("inviteId", request.get("invite_id"))
    if not isinstance(invite, str) or not invite:
        raise BadRequest("room_not_found", "room_join needs an inviteId string")
    return invite


def connection_type_of(request: dict) -> str:
    value = request.get("connectionType", request.get("connection_type", "server_broadcast"))
    if not isinstance(value, str):
        raise BadRequest("unsupported_connection_type", "connectionType must be a string")
    return value


def response(server_id: int, kind: str, request_id: Any, **fields) -> dict:
    """A reply: its own id, the request's id under both spellings, then the fields."""
    message = {"id": server_id, "type": kind, "requestId": request_id,
               "request_id": request_id, "result": "ok"}
    message.update(fields)
    return message


def refusal(server_id: int, kind: str, request_id: Any, code: str, text: str) -> dict:
    """A refused request: its own `<type>_response` with the error code in `result` (what
    the seed says and the only failure the real client reads) and a sentence for people."""
    return response(server_id, kind + "_response", request_id, result=code, errorMessage=text)


def error(server_id: int, origin_id: Optional[Any], code: str, text: str) -> dict:
    """The reply to a frame that is no request at all (not JSON, unknown type, no id)."""
    return {"id": server_id, "type": "error", "originId": origin_id, "error": code,
            "errorMessage": text}


def request_id_of(message: dict) -> Optional[Any]:
    """The request's `id` (a number or a string, as the client chose); None if it has none
    usable, which makes the frame no request: nothing could correlate a reply to it."""
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, float) and not math.isfinite(value):  # cannot be echoed as JSON
        return None
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: it cannot be echoed in UTF-8
            return None
    return value

def sender_prefix(player_id: str) -> str:
    """The text put in front of a relayed object's body: '{"sender":"ID",'."""
    return '{"sender":' + json.dumps(player_id) + ","


JSON_WHITESPACE = " \t\r\n"


def is_blank(text: str) -> bool:
    """A frame of nothing but JSON whitespace: the documented keep-alive (no reply)."""
    return not text.strip(JSON_WHITESPACE)


def _reencoded(decoded: dict) -> Optional[str]:
    """A decoded frame as JSON again; None if it cannot be written as valid JSON in UTF-8
    (1e400 would come back as Infinity)."""
    try:
        text = json.dumps(decoded, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate the client wrote as an escape
        text = json.dumps(decoded, separators=(",", ":"), allow_nan=False)
    return text


def may_carry_sender(frame: str) -> bool:
    """Whether the frame could hold a top-level "sender" key of the client's own: the key
    is either written plainly or spelt with a \\u escape ("s\\u0065nder"); no other JSON
    escape can produce one of its letters. Two substring scans, so the common frame pays
    almost nothing for the check."""
    return '"sender"' in frame or "\\u" in frame


def with_sender(prefix: str, frame: str) -> Optional[str]:
    """The frame with "sender" added as the object's first field, without decoding it;
    None when the frame is not a JSON object (it cannot carry a sender).

    A client cannot pass itself off as another player: a frame that holds a top-level
    "sender" of its own (browsers' JSON.parse keeps the *last* of duplicate keys) is the
    one case decoded, stripped of that key and re-encoded behind the server's sender."""
    if may_carry_sender(frame):
        try:
            decoded = json.loads(frame)
        except (ValueError, RecursionError):
            # it might hold a sender and cannot be checked here (bad JSON to Python, yet
            # maybe not to a browser: a 5000-digit number, nesting past our recursion
            # limit): refused rather than passed on unchecked
            return None
        if isinstance(decoded, dict) and "sender" in decoded:
            del decoded["sender"]
            frame = _reencoded(decoded)
            if frame is None:
                return None
    if frame[:1] != "{":
        stripped = frame.lstrip(JSON_WHITESPACE)  # only what JSON itself skips
        if stripped[:1] != "{":
            return None
        frame = stripped
    body = frame[1:]
    if body.lstrip(JSON_WHITESPACE)[:1] == "}":  # the empty object: no comma after sender
        return prefix[:-1] + body.lstrip(JSON_WHITESPACE)
    return prefix + body
