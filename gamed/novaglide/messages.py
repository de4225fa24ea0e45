"""Novaglide's wire shapes: the blueprint packet, ingame input, the state packet's fields.

Every packet is `{"time": ISO-8601, "sender": "server", "flag", "data": [...]}`; the client's
`ingame` data is `[[mouse_x, mouse_y], [keys...], scheme]`.
"""

from __future__ import annotations

import functools
import math

from gamed.novaglide.rules import Arena, Input

#: flags a client sends to share its own status; each is answered with the server's view
STATUS_FLAGS = ("online", "unknown", "offline", "waiting_for_opponent", "ingame",
                "waiting_for_approval", "searching")

_NUMBER = (int, float)  # exact types: a JSON true/false is not a coordinate
_STR_ONLY = frozenset({str})


def packet(flag: str, data: list, time: str, **extra) -> dict:
    message = {"time": time, "sender": "server", "flag": flag, "data": data}
    message.update(extra)
    return message


@functools.lru_cache(maxsize=4096)  # clients send the same few key combinations
def _keyset(keys: tuple) -> frozenset:
    return frozenset(k.lower() for k in keys)


def parse_input(data) -> Input:
    """`ingame` data [[mouse_x, mouse_y], [keys...], scheme] -> Input; ValueError if bad."""
    if not isinstance(data, list) or len(data) < 2:
        raise ValueError("ingame data must be [[mouse_x, mouse_y], [keys], scheme]")
    mouse, keys = data[0], data[1]
    scheme = data[2] if len(data) > 2 else "wsad"
    if type(mouse) is not list or len(mouse) != 2:
        raise ValueError("the mouse must be [x, y] numbers")
    x, y = mouse
    if type(x) not in _NUMBER or type(y) not in _NUMBER:
        raise ValueError("the mouse must be [x, y] numbers")
    try:
        x, y = float(x), float(y)  # an integer too big for a float overflows here
    except OverflowError:
        raise ValueError("the mouse must be [x, y] numbers of a sane size") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError("the mouse must be [x, y] numbers")
    if type(keys) is not list or len(keys) > 16 or not _STR_ONLY.issuperset(map(type, keys)):
        raise ValueError("the keys must be a list of key names")
    if not isinstance(scheme, str):
        raise ValueError("the scheme must be a string")
    return Input((x, y), _keyset(tuple(keys)), scheme.lower())


_STATE_FORMAT = ("%.3f,%d,%d,%s,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,"
                 "%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%s,%s,%s")
_JSON_BOOL = {True: "true", False: "false"}


def state_tail(arena: Arena, names_json: str) -> str:
    """game_state_1's 22 fields after your_side, as JSON text (the seed's order; the same
    values as `Arena.state_fields`), formatted in one C-level operation: it is sent to
    every player 60 times a second."""
    d1, d2 = arena.discs[1], arena.discs[2]
    h1x, h1y = (d1.hook_x, d1.hook_y) if d1.hook_state else (d1.x, d1.y)
    h2x, h2y = (d2.hook_x, d2.hook_y) if d2.hook_state else (d2.x, d2.y)
    return _STATE_FORMAT % (
        arena.remaining, arena.score[1], arena.score[2], names_json,
        d1.x, d1.y, d2.x, d2.y, h1x, h1y, h2x, h2y,
        d1.dash_cooldown, d1.hook_cooldown, d2.dash_cooldown, d2.hook_cooldown,
        arena.ball.x, arena.ball.y, _JSON_BOOL[d1.hook_state is not None],
        _JSON_BOOL[d2.hook_state is not None], _JSON_BOOL[arena.tiebreak])


def state_packet(stamp: str, side: int, tail: str) -> str:
    return ('{"time":"%s","sender":"server","player_id":%d,"flag":"game_state_1",'
            '"data":[%d,%s]}' % (stamp, side, side, tail))
