"""Block Attack's datagram shapes (see docs/blockattack.md): what clients send, as attrs
classes structured with cattrs, and what the server sends.

Client datagrams are checked here, at the edge: `structure(cls, message)` turns a decoded
JSON object into one typed datagram or raises `BadDatagram` with the wire error code of
the first bad field. Integers and strings are strict (cattrs' default hooks would turn
`true` into 1 and 5 into "5"). The board, score rules and powers are the rules module's
to check. Every game_flux goes through here, so the converter that runs first skips
cattrs' detailed validation (about a microsecond a datagram); only a datagram that fails
is structured again, with detailed validation, to name the field at fault.

Server datagrams are built as dicts (small, rare) except the game_flux reply, which
splices the two boards in as bytes each encoded once per report.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from gamed.blockattack.rules import Duel

#: at most this many ids in one power_ack or ack (a client never has more outstanding)
MAX_IDS = 64


class BadDatagram(ValueError):
    """A client datagram that cannot be read; `code` goes on the wire."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# -- client -> server -----------------------------------------------------------------------

@attrs.frozen
class Connect:
    """Pair me (`self` on the wire) with `opponent`. The seed's connect has no timestamp,
    so it is optional here; when present it must be integer milliseconds."""

    player: str
    opponent: str
    timestamp: Optional[int] = None


@attrs.frozen
class GameFlux:
    """One report of the player's own well; `user_blocks` and `power_used` are checked by
    the rules (`opponent_blocks` and `powers_available` are the server's to say)."""

    timestamp: int
    game_name: str
    user_blocks: Any
    user_score: int
    pieces_placed: Optional[int] = None
    power_used: Any = None
    power_ack: tuple = ()  # ids of power_applied events applied by this player


@attrs.frozen
class Ack:
    """`ack` is "game_end" or "power_applied" (with the event `ids`)."""

    timestamp: int
    game_name: str
    ack: str
    ids: tuple = ()


@attrs.frozen
class Forfeit:
    timestamp: int
    game_name: str


#: command -> the datagram class it structures into
CLIENT_DATAGRAMS = {"connect": Connect, "game_flux": GameFlux, "ack": Ack,
                    "forfeit": Forfeit}
ACKS = ("game_end", "power_applied")

#: the wire field at fault -> the error code sent back
FIELD_CODES = {"timestamp": "bad_timestamp", "self": "bad_connect", "player": "bad_connect",
               "opponent": "bad_connect", "game_name": "bad_game_name",
               "user_blocks": "bad_board", "user_score": "bad_score",
               "pieces_placed": "bad_pieces", "power_used": "bad_power",
               "power_ack": "bad_ack", "ids": "bad_ack", "ack": "bad_ack"}
WIRE_NAMES = {"player": "self"}


def _strict_int(value, _type) -> int:
    if type(value) is not int:  # exact: a bool is an int to Python, not here
        raise ValueError("expected an integer, not %s" % _json_type(value))
    if not -(2 ** 63) <= value < 2 ** 63:
        raise ValueError("integer out of range")
    return value


def _strict_str(value, _type) -> str:
    if type(value) is not str:
        raise ValueError("expected a string, not %s" % _json_type(value))
    return value


def _ids(value, _type) -> tuple:
    if value is None:
        return ()
    if type(value) is not list or len(value) > MAX_IDS:
        raise ValueError("expected a list of at most %d integer ids" % MAX_IDS)
    for item in value:
        if type(item) is not int:
            raise ValueError("expected integer ids, not %s" % _json_type(item))
    return tuple(value)


def _ack(value, _type) -> str:
    if value not in ACKS:
        raise ValueError("expected one of %s" % ", ".join(ACKS))
    return value


def _json_type(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value),
                                                                       type(value).__name__)


def _converter(detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(Any, lambda value, _type: value)
    conv.register_structure_hook(Connect, make_dict_structure_fn(
        Connect, conv, player=override(rename="self")))
    conv.register_structure_hook(GameFlux, make_dict_structure_fn(
        GameFlux, conv, power_ack=override(struct_hook=_ids)))
    conv.register_structure_hook(Ack, make_dict_structure_fn(
        Ack, conv, ack=override(struct_hook=_ack), ids=override(struct_hook=_ids)))
    return conv


_FAST = _converter(detailed=False)
_DETAILED = _converter(detailed=True)


def structure(cls, message: dict):
    """One typed client datagram from a decoded JSON object, or BadDatagram."""
    try:
        return _FAST.structure(message, cls)
    except Exception:  # noqa: BLE001 - any failure is explained by the detailed pass
        pass
    try:
        _DETAILED.structure(message, cls)
    except cattrs.ClassValidationError as exc:
        raise _explain(exc) from None
    except Exception as exc:  # noqa: BLE001
        raise BadDatagram("bad_field", str(exc)) from None
    raise BadDatagram("bad_field", "unreadable %s" % cls.__name__)  # pragma: no cover


def _explain(exc: cattrs.ClassValidationError) -> BadDatagram:
    """The first failing field of a detailed structuring error, as a wire error."""
    with_notes, _ = exc.group_exceptions()
    if not with_notes:  # pragma: no cover - every field failure carries a note
        return BadDatagram("bad_field", str(exc))
    error, note = with_notes[0]
    field = WIRE_NAMES.get(note.name, note.name)
    code = FIELD_CODES.get(field, "bad_field")
    if isinstance(error, KeyError):
        return BadDatagram(code, "%s is missing" % field)
    return BadDatagram(code, "%s: %s" % (field, error))


# -- server -> client -----------------------------------------------------------------------

def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def error(code: str, text: Optional[str] = None, timestamp: Optional[int] = None) -> dict:
    """The error reply; its smallest form (no text, no timestamp) is what may go where a
    bigger one would amplify."""
    message = {"command": "error", "error": code}
    if text is not None:
        message["message"] = text
    if timestamp is not None:
        message["timestamp"] = timestamp
    return message


def waiting(opponent: str, timestamp: Optional[int] = None) -> dict:
    message = {"command": "waiting", "opponent": opponent}
    if timestamp is not None:
        message["timestamp"] = timestamp
    return message


def game_start(timestamp: int, game_name: str, duel: Duel, player: str, now: float) -> dict:
    side, other = duel.sides[player], duel.opponent(player)
    piece = duel.next_piece(player)
    message = {"timestamp": timestamp, "command": "game_start", "game_name": game_name,
               "self": player, "opponent": other.name,
               "next_block": piece.shape, "next_piece": piece.describe(),
               "time_left": round(duel.time_left(now), 3),
               "user_score": side.score, "opponent_score": other.score,
               "powers_available": list(side.powers_available),
               "power_every": duel.power_every}
    # boards only once there is something on them: a fresh game's are empty, and the
    # small datagram keeps what a forged connect can draw toward its victim small
    if any(map(any, side.board)) or any(map(any, other.board)):
        message["user_blocks"], message["opponent_blocks"] = side.board, other.board
    return message


def game_flux(timestamp: int, game_name: str, duel: Duel, player: str, now: float,
              user_board: bytes, opponent_board: bytes) -> bytes:
    """The reply to a game_flux, as bytes: the two boards come already encoded (each is
    encoded once per report, and every report gets a reply)."""
    side, other = duel.sides[player], duel.opponent(player)
    piece = duel.next_piece(player)
    small = encode({
        "timestamp": timestamp, "command": "game_flux", "game_name": game_name,
        "power_used": None,
        "power_applied": [event.describe() for event in side.incoming.values()],
        "next_block": piece.shape, "next_piece": piece.describe(),
        "time_left": round(duel.time_left(now), 3),
        "user_score": side.score, "opponent_score": other.score,
        "powers_available": side.powers_available})
    return (small[:-1] + b',"user_blocks":' + user_board
            + b',"opponent_blocks":' + opponent_board + b"}")


def game_end(game_name: str, duel: Duel, elo: Optional[dict], saved: bool = True) -> dict:
    """Without its timestamp: each copy sent gets a fresh one. `saved` false (and `elo`
    null): the result could not be stored, so the game does not count."""
    return {"command": "game_end", "game_name": game_name, "winner": duel.winner,
            "score": duel.scores(), "reason": duel.reason, "elo": elo, "saved": saved}
