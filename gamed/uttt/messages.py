"""The uttt wire shapes: `{"type", "data"}` frames as attrs classes, structured with cattrs.

Incoming frames are validated here, at the edge: `parse_request` turns a decoded JSON
object into one typed request or raises `BadRequest` with a stable code and a message fit
for the player. Outgoing messages are attrs classes too; `frame()` turns one into the
`{"type", "data"}` object the web client reads.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import attrs
import cattrs

from gamed.uttt.rules import coordinate

NAME_PATTERN = re.compile(r"^[a-z0-9_-]{3,16}$")
MAX_PASSWORD_LENGTH = 32
MAX_ID_LENGTH = 128


class BadRequest(Exception):
    """A frame that cannot be served: a stable `code` and a message for the player."""

    def __init__(self, code: str, message: str, request_type: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_type = request_type


def player_name(value: str) -> str:
    """The canonical (lower-cased) form of a player name; BadRequest if it is not one."""
    name = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadRequest("invalid_name", "names are 3 to 16 characters of a-z, 0-9, _ and -")
    return name


def match_id(value) -> str:
    """Match ids are strings on the wire; a number is accepted and turned into one."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("the match id must be a string")
    text = str(value)
    if not text or len(text) > MAX_ID_LENGTH:
        raise ValueError("the match id must be 1 to %d characters" % MAX_ID_LENGTH)
    return text


# -- requests (client -> server) ------------------------------------------------------------

@attrs.frozen
class LoginRequest:
    """Log in, or register a new name; an empty or null `pw` asks for a temporary session."""

    name: str
    pw: Optional[str] = None


@attrs.frozen
class TempSessionRequest:
    """A temporary, unranked session; without a name the server picks one."""

    name: Optional[str] = None


@attrs.frozen
class ReconnectRequest:
    id: str


@attrs.frozen
class MatchRequest:
    """`player` null: a random opponent; a name: invite that player."""

    player: Optional[str] = None


@attrs.frozen
class MoveRequest:
    id: str = attrs.field(converter=match_id)
    sub_x: int = attrs.field(converter=coordinate)
    sub_y: int = attrs.field(converter=coordinate)
    x: int = attrs.field(converter=coordinate)
    y: int = attrs.field(converter=coordinate)


@attrs.frozen
class EndMatchRequest:
    id: str = attrs.field(converter=match_id)


@attrs.frozen
class MatchStatesRequest:
    pass


@attrs.frozen
class FriendRequest:
    user: str


@attrs.frozen
class UnfriendRequest:
    user: str


#: message type -> request class
REQUESTS: dict = {
    "login": LoginRequest,
    "temp_session": TempSessionRequest,
    "reconnect": ReconnectRequest,
    "match_request": MatchRequest,
    "move": MoveRequest,
    "end_match": EndMatchRequest,
    "match_states_request": MatchStatesRequest,
    "friend_request": FriendRequest,
    "unfriend_request": UnfriendRequest,
}

#: request type -> the type of the reply that carries its failures (and successes)
RESPONSE_TYPES: dict = {
    "login": "login_response",
    "temp_session": "login_response",
    "reconnect": "reconnect_response",
    "match_request": "match_request_response",
    "move": "move_response",
    "end_match": "end_match_response",
    "match_states_request": "match_states_response",
    "friend_request": "friend_request_response",
    "unfriend_request": "unfriend_request_response",
}

#: the requests a connection may send before it has a session
SESSION_REQUESTS = frozenset(("login", "temp_session", "reconnect"))


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)

    def strict_str(value, _type):
        if not isinstance(value, str):
            raise ValueError("expected a string, not %s" % type(value).__name__)
        return value

    def passthrough(value, _type):
        return value

    conv.register_structure_hook(str, strict_str)
    # MoveRequest / EndMatchRequest convert their own fields (digit strings, numeric ids)
    for cls in (MoveRequest, EndMatchRequest):
        conv.register_structure_hook(cls, _with_raw_fields(cls))
    conv.register_structure_hook(Any, passthrough)
    return conv


def _with_raw_fields(cls):
    names = [field.name for field in attrs.fields(cls)]

    def structure(value, _type):
        missing = [name for name in names if name not in value]
        if missing:
            raise BadRequest("missing_field", "missing field%s: %s"
                             % ("s" if len(missing) > 1 else "", ", ".join(missing)))
        try:
            return cls(**{name: value[name] for name in names})
        except ValueError as exc:
            raise BadRequest("invalid_field", str(exc)) from None

    return structure


_CONVERTER = _converter()


def parse_request(message: dict) -> tuple:
    """(type, request) from one decoded frame; BadRequest when it is not a valid request."""
    kind = message.get("type")
    if not isinstance(kind, str):
        raise BadRequest("missing_type", "every message needs a string \"type\"")
    cls = REQUESTS.get(kind)
    if cls is None:
        raise BadRequest("unknown_type", "unknown message type %r" % kind[:64], kind)
    data = message.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("invalid_data", "\"data\" must be an object", kind)
    try:
        return kind, _CONVERTER.structure(data, cls)
    except BadRequest as exc:
        exc.request_type = kind
        raise
    except cattrs.ClassValidationError as exc:
        problems = "; ".join(cattrs.transform_error(exc, path="data"))
        raise BadRequest("invalid_field", problems, kind) from None
    except (ValueError, TypeError) as exc:
        raise BadRequest("invalid_field", str(exc), kind) from None


# -- replies and updates (server -> client) -------------------------------------------------

@attrs.frozen
class Response:
    """The `*_response` shape: the web client shows `msg`, success or not."""

    success: bool
    msg: str
    error: Optional[str] = None  # a stable code on failures


@attrs.frozen
class LoginResponse:
    success: bool
    msg: str
    id: Optional[str] = None  # the session token
    registered: bool = False
    user: Optional[str] = None
    error: Optional[str] = None


@attrs.frozen
class ReconnectResponse:
    success: bool
    msg: str
    id: Optional[str] = None
    user: Optional[str] = None
    registered: bool = False
    error: Optional[str] = None


@attrs.frozen
class MoveResponse:
    """Only failures are answered this way; a legal move is answered by match_update."""

    success: bool
    msg: str
    id: Optional[str] = None
    error: Optional[str] = None


@attrs.frozen
class LastMove:
    sub_x: int
    sub_y: int
    x: int
    y: int


@attrs.frozen
class MatchState:
    complete_field: list
    global_field: list
    last_move: Optional[LastMove]
    game_over: bool
    is_draw: bool
    player_won: Optional[str]
    current_player: Optional[str]
    active_player: Optional[str]
    player_a: str
    player_b: str

    def to_wire(self) -> dict:
        # written out: this runs for every move, and a generic asdict walks all 81 cells
        last = self.last_move
        return {
            "complete_field": self.complete_field, "global_field": self.global_field,
            "last_move": None if last is None else {
                "sub_x": last.sub_x, "sub_y": last.sub_y, "x": last.x, "y": last.y},
            "game_over": self.game_over, "is_draw": self.is_draw,
            "player_won": self.player_won, "current_player": self.current_player,
            "active_player": self.active_player, "player_a": self.player_a,
            "player_b": self.player_b}


@attrs.frozen
class MatchUpdate:
    """`match_state` None tells the client to forget the match."""

    id: str
    revoke_time: Optional[str]
    ranked: bool
    match_state: Optional[MatchState]

    def to_wire(self) -> dict:
        return {"id": self.id, "revoke_time": self.revoke_time, "ranked": self.ranked,
                "match_state": None if self.match_state is None else self.match_state.to_wire()}


@attrs.frozen
class EloUpdate:
    elo: Optional[float]
    rank: Optional[int]
    top_names: list
    top_elos: list


@attrs.frozen
class FriendsUpdate:
    friends: list
    elos: list
    online: list


@attrs.frozen
class Invite:
    """Sent by the server as `match_request`: `player` invited you (the match has started)."""

    player: str
    id: Optional[str] = None


@attrs.frozen
class ErrorReply:
    """For frames that name no known request (malformed JSON, unknown type, flooding)."""

    success: bool
    msg: str
    error: str
    request_type: Optional[str] = None


OUTGOING_TYPES: dict = {
    EloUpdate: "elo_update",
    FriendsUpdate: "friends_update",
    MatchUpdate: "match_update",
    Invite: "match_request",
    ErrorReply: "error",
    MoveResponse: "move_response",
}


def _unstructure(value):
    to_wire = getattr(value, "to_wire", None)
    return to_wire() if to_wire is not None else attrs.asdict(value)


def frame(value, type_: Optional[str] = None) -> dict:
    """The `{"type", "data"}` object for an outgoing message."""
    return {"type": type_ or OUTGOING_TYPES[type(value)], "data": _unstructure(value)}


def failure(request_type: Optional[str], code: str, msg: str, **extra) -> dict:
    """The failure reply to a request of `request_type` (an `error` frame if none fits)."""
    reply_type = RESPONSE_TYPES.get(request_type or "")
    if reply_type is None:
        return frame(ErrorReply(False, msg, code, request_type))
    if reply_type == "login_response":
        return frame(LoginResponse(False, msg, error=code), reply_type)
    if reply_type == "reconnect_response":
        return frame(ReconnectResponse(False, msg, error=code), reply_type)
    data = _unstructure(Response(False, msg, code))
    data.update(extra)
    return {"type": reply_type, "data": data}
