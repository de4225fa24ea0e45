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

In a match the client sends 60 `ingame` requests a second, each the same ~670 bytes but
for the time, the mouse and the 512 key bools. `read_ingame` recognises exactly that byte
layout (a regular expression over its opcodes, bytes methods over its key bools: pure byte
matching, nothing is loaded, nothing named is looked up) and reads the keys from it;
anything else, however slightly different, goes to `SafeUnpickler` and `check_request` as
before. It gives the very result they would give, or none (tests feed both random and
mutated pickles to compare).
"""

from __future__ import annotations

import datetime
import io
import itertools
import math
import operator
import pickle
import re
import struct
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

    def next_request(self) -> Optional["ClassicRequest"]:
        """The next whole request, checked (`check_request`), or None until more bytes
        come; raises RefusedRequest as `take` and `check_request` do. The client's own
        `ingame` pickle is read by its layout (`read_ingame`), anything else unpickled."""
        buffer = self.buffer
        if not buffer:
            return None
        fast = read_ingame(buffer, self.max_request)
        if fast is not None:
            request, end = fast
            del buffer[:end]
            return request
        raw = self.take()
        return check_request(raw) if raw is not None else None

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


# -- the client's ingame request, read by its layout ---------------------------------------------

#: `pickle.dumps({"time": datetime, "sender": id, "flag": "ingame", "data": [(x, y),
#: ScancodeWrapper(bools), scheme]})` as CPython writes it (protocol 4, or 5 from 3.14),
#: opcode by opcode; only the named parts vary. The alternatives of each variable part
#: start with distinct opcodes, so a match is unambiguous. The key bools after it are
#: checked with bytes methods (memchr, memcmp: a regular expression spends ~20
#: instructions a byte on them), then the tail is one of two byte strings.
_NUMBER = rb"K.|M..|J....|G.{8}"  # BININT1, BININT2, BININT, BINFLOAT
_INGAME_HEAD = re.compile(
    rb"\x80[\x04\x05]\x95(?P<frame>.{8})"  # PROTO 4|5, FRAME n
    rb"\}\x94\(\x8c\x04time\x94"  # EMPTY_DICT MEMOIZE MARK "time"
    rb"\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94"  # STACK_GLOBAL datetime.datetime
    rb"C\x0a(?P<time>.{10})\x94\x85\x94R\x94"  # SHORT_BINBYTES(10) TUPLE1 REDUCE
    rb"\x8c\x06sender\x94(?:K.|M..|J....)"  # "sender": an int (the account id)
    rb"\x8c\x04flag\x94\x8c\x06ingame\x94"
    rb"\x8c\x04data\x94\]\x94\("  # EMPTY_LIST MEMOIZE MARK
    rb"(?P<x>%(number)s)(?P<y>%(number)s)\x86\x94"  # the mouse: TUPLE2
    # a ScancodeWrapper: STACK_GLOBAL, MARK, then a NEWTRUE/NEWFALSE per key
    rb"\x8c\x0apygame\.key\x94\x8c\x0fScancodeWrapper\x94\x93\x94\("
    % {b"number": _NUMBER}, re.DOTALL)
_KEYS_END = b"t"  # TUPLE: the end of the bools
#: what follows the bools, by scheme: TUPLE MEMOIZE TUPLE1 MEMOIZE NEWOBJ MEMOIZE, the
#: scheme (SHORT_BINUNICODE MEMOIZE), APPENDS SETITEMS STOP
_INGAME_TAILS = tuple((b"t\x94\x85\x94\x81\x94\x8c%c%s\x94eu." % (len(scheme), scheme),
                       scheme.decode("ascii")) for scheme in (b"wsad", b"arrows"))
_FRAME_START = 11  # PROTO (2 bytes) + FRAME (9 bytes): the frame holds the rest
_NUMBER_OF = {ord("K"): lambda raw: raw[1], ord("M"): lambda raw: raw[1] | raw[2] << 8,
              ord("J"): lambda raw: struct.unpack("<i", raw[1:])[0],
              ord("G"): lambda raw: struct.unpack(">d", raw[1:])[0]}
_NEWTRUE, _NEWFALSE = b"\x88", b"\x89"
_ALL_FALSE = _NEWFALSE * MAX_SCANCODES
_TRUE = _NEWTRUE[0]
_KEY_CODES = tuple(code for code, _ in _SCANCODE_ITEMS)
_KEY_CODES_MAX = max(_KEY_CODES)
_opcodes_at_keys = operator.itemgetter(*_KEY_CODES)
#: the opcodes at the game's 10 scancodes -> the keys held (all 2**10 combinations)
_KEYS_BY_OPCODES = {
    opcodes: tuple(name for (_, name), opcode in zip(_SCANCODE_ITEMS, opcodes)
                   if opcode == _TRUE)
    for opcodes in itertools.product((_TRUE, _NEWFALSE[0]), repeat=len(_KEY_CODES))}


def _keys_of_bools(bools) -> list:
    """The game's keys held, from pygame's pressed-key bools as pickle opcodes."""
    if len(bools) <= _KEY_CODES_MAX:  # fewer scancodes than pygame 2's: key by key
        return [name for code, name in _SCANCODE_ITEMS
                if code < len(bools) and bools[code] == _TRUE]
    return list(_KEYS_BY_OPCODES[_opcodes_at_keys(bools)])


def read_ingame(buffer, max_request: int):
    """(the checked request, its length) when `buffer` starts with the client's own
    `ingame` pickle, whole and within `max_request` bytes; None for anything else (then
    `SafeUnpickler` reads it). Pure byte matching: the result is what `SafeUnpickler` and
    `check_request` would give for these bytes."""
    head = _INGAME_HEAD.match(buffer)
    if head is None:
        return None
    start = head.end()
    stop = buffer.find(_KEYS_END, start, start + MAX_SCANCODES + 1)
    if stop < 0:
        return None
    bools = buffer[start:stop]
    # each a NEWTRUE or a NEWFALSE: all NEWFALSE once NEWTRUE is replaced (memchr, memcmp)
    if not _ALL_FALSE.startswith(bools.replace(_NEWTRUE, _NEWFALSE)):
        return None
    for tail, scheme in _INGAME_TAILS:
        if buffer.startswith(tail, stop):
            break
    else:
        return None
    end = stop + len(tail)
    if end > max_request or int.from_bytes(head["frame"], "little") != end - _FRAME_START:
        return None
    try:  # unpickling calls datetime.datetime(bytes), which checks them (their month)
        datetime.datetime(head["time"])
    except Exception:
        return None  # the unpickler refuses it, and says why
    x, y = head["x"], head["y"]
    mouse = [_NUMBER_OF[x[0]](x), _NUMBER_OF[y[0]](y)]
    return ClassicRequest("ingame", [mouse, _keys_of_bools(bools), scheme]), end


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
