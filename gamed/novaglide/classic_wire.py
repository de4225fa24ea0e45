"""The original Novaglide desktop client's wire, as pure functions: safe unpickling of its
requests, their shapes, and the pickled replies it reads.

The client (schrodlm/novaglide, `src/networking/network.py`) speaks raw pickles over TCP
with no framing: it reads one text greeting, then sends `pickle.dumps(request)` and blocks
in `pickle.loads(recv(2048))` for exactly one reply. A request is
`{"time": datetime, "sender": id, "flag": str, "data": [...]}`; its only class references
are `datetime.datetime` and, in `ingame`, `pygame.key.ScancodeWrapper` (a tuple of 512
bools by SDL scancode). Unpickling anything else could run code of the sender's choosing,
so `SafeUnpickler` admits exactly those two (the wrapper becomes a plain tuple; pygame is
never imported) and `RequestReader` caps each request's size. Replies are pickles of plain
built-ins only, small enough for the client's single `recv(2048)`.
"""

from __future__ import annotations

import datetime
import io
import math
import pickle
from typing import Callable, Optional, Sequence

import attrs

#: the original server's greeting; the client reads it once, right after connecting
WELCOME = b"Welcome, please fill the credentials!"
#: a reply must arrive whole in the client's one recv(2048); stay under one TCP segment
MAX_REPLY_BYTES = 1400
#: pickle protocol of the replies (Python 3.4+ reads it; the client's own default)
REPLY_PROTOCOL = 4
#: SDL scancodes of the keys the game uses (pygame.key.get_pressed() is indexed by them)
SCANCODE_KEYS = {26: "w", 4: "a", 22: "s", 7: "d", 44: "space", 225: "lshift",
                 79: "right", 80: "left", 81: "down", 82: "up"}
MAX_SCANCODES = 1024  # pygame 2 sends 512
MAX_FLAG_LENGTH = 64
MAX_DATA_ITEMS = 8
MAX_TEXT_LENGTH = 1024

_ALLOWED_GLOBALS = {
    ("datetime", "datetime"): datetime.datetime,
    # a tuple subclass pickled as NEWOBJ(cls, (bools,)): tuple.__new__ gives the plain tuple
    ("pygame.key", "ScancodeWrapper"): tuple,
}
_PLAIN = (str, int, float, bool, type(None))
_SCANCODE_ITEMS = tuple(SCANCODE_KEYS.items())


class RefusedRequest(Exception):
    """A request that must not be used: the connection that sent it is closed."""

    def __init__(self, code: str, detail: str):
        super().__init__("%s: %s" % (code, detail))
        self.code = code
        self.detail = detail


class SafeUnpickler(pickle.Unpickler):
    """Admits `datetime.datetime` and `pygame.key.ScancodeWrapper` (as tuple) only."""

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise RefusedRequest("forbidden_class", "the request names %.60s.%.60s"
                                 % (module, name))
        return allowed

    def persistent_load(self, pid):
        raise RefusedRequest("forbidden_class", "the request holds a persistent id")


class RequestReader:
    """Splits a byte stream into pickled requests: a request ends at its STOP opcode, and
    a TCP stream may split one request or join two. Each request is capped in size."""

    def __init__(self, max_request: int):
        self.max_request = max_request
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def take(self):
        """The next whole request (unpickled, unchecked), or None until more bytes come.
        Raises RefusedRequest for anything that is not a safe pickle of a few KiB."""
        if not self.buffer:
            return None
        window = bytes(self.buffer[: self.max_request])
        stream = io.BytesIO(window)
        try:
            request = SafeUnpickler(stream).load()
        except RefusedRequest:
            raise
        except (EOFError, pickle.UnpicklingError) as exc:
            truncated = isinstance(exc, EOFError) or "truncated" in str(exc)
            if not truncated:
                raise RefusedRequest("bad_pickle", str(exc)[:200]) from None
            if len(self.buffer) >= self.max_request:
                raise RefusedRequest("request_too_large", "a request is larger than %d bytes"
                                     % self.max_request) from None
            return None
        except RecursionError:
            raise RefusedRequest("bad_pickle", "nested too deeply") from None
        except Exception as exc:  # any other failure of a hostile pickle: refuse it
            raise RefusedRequest("bad_pickle", "%s: %s" % (type(exc).__name__,
                                                           str(exc)[:200])) from None
        del self.buffer[: stream.tell()]
        return request


@attrs.frozen
class ClassicRequest:
    """A checked request: its flag and its data in the JSON handler's shapes."""

    flag: str
    data: list


def _plain(value, what: str):
    if type(value) not in _PLAIN:
        raise RefusedRequest("bad_request", "%s must hold plain values" % what)
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        raise RefusedRequest("bad_request", "%s holds a text that is too long" % what)
    if type(value) is float and not math.isfinite(value):
        raise RefusedRequest("bad_request", "%s holds a number that is not finite" % what)
    return value


def keys_from_scancodes(pressed: Sequence) -> list:
    """pygame.key.get_pressed() (bools by SDL scancode) -> the key names the rules know.
    Only the game's keys are read (60 times a second, in one pass): they must be
    booleans."""
    size = len(pressed)
    names = []
    for code, name in _SCANCODE_ITEMS:
        if code < size:
            held = pressed[code]
            if held is True:
                names.append(name)
            elif held is not False:
                raise RefusedRequest("bad_request", "the keys must be pygame's pressed-key "
                                                    "tuple of booleans")
    return names


def _ingame_data(data: list) -> list:
    """[mouse (x, y), ScancodeWrapper, "wsad"|"arrows"] -> [[x, y], [key names], scheme]."""
    if data == ["no_data"]:
        return data
    if len(data) != 3:
        raise RefusedRequest("bad_request", "ingame data must be [mouse, keys, scheme]")
    mouse, pressed, scheme = data
    if (type(mouse) not in (tuple, list) or len(mouse) != 2
            or any(type(v) not in (int, float) for v in mouse)):
        raise RefusedRequest("bad_request", "the mouse must be an (x, y) pair of numbers")
    if type(pressed) not in (tuple, list) or len(pressed) > MAX_SCANCODES:
        raise RefusedRequest("bad_request", "the keys must be pygame's pressed-key tuple")
    if type(scheme) is not str or len(scheme) > MAX_FLAG_LENGTH:
        raise RefusedRequest("bad_request", "the control scheme must be a string")
    return [list(mouse), keys_from_scancodes(pressed), scheme]


def check_request(request) -> ClassicRequest:
    """The same shapes and types the JSON handler accepts; anything else is refused."""
    if type(request) is not dict:
        raise RefusedRequest("bad_request", "a request must be a dict")
    flag, data = request.get("flag"), request.get("data")
    if type(flag) is not str or not flag or len(flag) > MAX_FLAG_LENGTH:
        raise RefusedRequest("bad_request", "a request needs a flag")
    if type(data) not in (list, tuple):
        raise RefusedRequest("bad_request", "a request's data must be a list")
    data = list(data)
    if flag == "ingame":
        return ClassicRequest(flag, _ingame_data(data))
    if len(data) > MAX_DATA_ITEMS:
        raise RefusedRequest("bad_request", "a request's data is too long")
    return ClassicRequest(flag, [_plain(item, "data") for item in data])


# -- replies ------------------------------------------------------------------------------------

def reply_bytes(flag: str, data, time: str) -> bytes:
    """One pickled reply of plain built-ins (`time` as text, no class references)."""
    return pickle.dumps({"time": time, "sender": "server", "flag": flag, "data": data},
                        protocol=REPLY_PROTOCOL)


def state_replies(fields: list, time: str) -> tuple:
    """game_state_1 pickled for side 1 and side 2. They differ only in data[0]: side 2's is
    side 1's bytes with that one byte changed (pickled once: it is sent 60 times a second
    to every player)."""
    one = reply_bytes("game_state_1", [1, *fields], time)
    # the data list opens EMPTY_LIST, MEMOIZE, MARK, then BININT1 <side>
    at = one.find(b"]\x94(K\x01")
    if at < 0:  # another pickler's layout: pickle both
        return one, reply_bytes("game_state_1", [2, *fields], time)
    at += 4
    return one, one[:at] + b"\x02" + one[at + 1:]


def fitted_reply(flag: str, rows: list, shape: Callable[[list], object], time: str) -> bytes:
    """The reply `shape(rows)`, with rows dropped from the end until it fits one recv."""
    rows = list(rows)
    while True:
        payload = reply_bytes(flag, shape(rows), time)
        if len(payload) <= MAX_REPLY_BYTES or not rows:
            return payload
        # drop in proportion to the overshoot, at least one row
        excess = len(payload) - MAX_REPLY_BYTES
        per_row = max(1, (len(payload) - 120) // len(rows))
        del rows[max(0, len(rows) - max(1, -(-excess // per_row))):]


def whole(number) -> int:
    """Ratings and rates as the client's integer columns (its Elo code refuses floats)."""
    return int(round(number)) if number is not None else 0


def elo_data(rating: float, challenger_threshold: Optional[float]) -> list:
    """client_elo: [elo, [(threshold,)]]: the client reads the rating and the challenger
    division's floor (the 100th best rating, or the lowest one with fewer players)."""
    floor = challenger_threshold if challenger_threshold is not None else rating
    return [whole(rating), [(whole(floor),)]]


def challenger_rows(rows: list) -> list:
    """challengers: the rows themselves, (name, winrate %, elo) each, best first."""
    return [(name, whole(rate), whole(rating)) for name, rate, rating in rows]


def history_row(match: dict) -> tuple:
    """One games_1v1 row as the client's table reads it: (id, p1 name, p2 name, p1 elo,
    p2 elo, p1 goals, p2 goals, date), each elo as it stood before the match."""
    players = match["players"] + [{}] * (2 - len(match["players"]))
    one, two = players[0], players[1]
    return (match["id"], one.get("name"), two.get("name"), whole(one.get("rating_before")),
            whole(two.get("rating_before")), whole(one.get("score")), whole(two.get("score")),
            match.get("ended_at") or "")


def end_game_data(stats: dict, winner: Optional[str]) -> tuple:
    """end_game_state_1: (stats by name in side order, winner name or None)."""
    return (stats, winner)
