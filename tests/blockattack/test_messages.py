"""Block Attack's datagram shapes: typed client datagrams, their errors, the server's replies."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamed.blockattack import messages
from gamed.blockattack.messages import Ack, BadDatagram, Connect, Forfeit, GameFlux, structure
from gamed.blockattack.rules import Duel, empty_board

BOARD = empty_board()


def flux(**fields):
    message = {"timestamp": 1795000000000, "command": "game_flux", "game_name": "ba-1",
               "user_blocks": BOARD, "opponent_blocks": None, "power_used": None,
               "user_score": 0, "powers_available": []}
    message.update(fields)
    return {key: value for key, value in message.items() if value is not ...}


def test_connect_reads_self_and_the_seeds_connect_has_no_timestamp():
    assert structure(Connect, {"command": "connect", "self": "ann", "opponent": "ben"}) == \
        Connect("ann", "ben", None)
    assert structure(Connect, {"self": "ann", "opponent": "ben", "timestamp": 5}).timestamp == 5


def test_the_seeds_game_flux_is_read_and_extra_fields_are_ignored():
    read = structure(GameFlux, flux())
    assert read == GameFlux(1795000000000, "ba-1", BOARD, 0)
    full = structure(GameFlux, flux(pieces_placed=3, power_used={"power": "S", "shape": "O"},
                                    power_ack=[1, 2], extra="ignored"))
    assert full.pieces_placed == 3 and full.power_ack == (1, 2)
    assert full.power_used == {"power": "S", "shape": "O"}  # the rules read powers
    assert structure(GameFlux, flux(power_ack=None)).power_ack == ()


def test_ack_and_forfeit():
    assert structure(Ack, {"timestamp": 3, "game_name": "g", "ack": "game_end"}) == \
        Ack(3, "g", "game_end", ())
    assert structure(Ack, {"timestamp": 3, "game_name": "g", "ack": "power_applied",
                           "ids": [4, 5]}).ids == (4, 5)
    assert structure(Forfeit, {"timestamp": 3, "game_name": "g"}) == Forfeit(3, "g")


@pytest.mark.parametrize("cls, message, code, words", [
    (Connect, {"self": "ann"}, "bad_connect", "opponent is missing"),
    (Connect, {"self": [], "opponent": "ben"}, "bad_connect", "self: expected a string"),
    (Connect, {"self": "a", "opponent": "b", "timestamp": "1"}, "bad_timestamp", "string"),
    (GameFlux, flux(timestamp=...), "bad_timestamp", "timestamp is missing"),
    (GameFlux, flux(timestamp=True), "bad_timestamp", "not a boolean"),
    (GameFlux, flux(timestamp=1.5), "bad_timestamp", "not a number"),
    (GameFlux, flux(timestamp=2 ** 64), "bad_timestamp", "out of range"),
    (GameFlux, flux(game_name=7), "bad_game_name", "not an integer"),
    (GameFlux, flux(user_score="9"), "bad_score", "not a string"),
    (GameFlux, flux(user_score=...), "bad_score", "missing"),
    (GameFlux, flux(pieces_placed=False), "bad_pieces", "boolean"),
    (GameFlux, flux(power_ack="1"), "bad_ack", "power_ack"),
    (GameFlux, flux(power_ack=[1, None]), "bad_ack", "not null"),
    (GameFlux, flux(power_ack=list(range(65))), "bad_ack", "at most 64"),
    (Ack, {"timestamp": 1, "game_name": "g", "ack": "nothing"}, "bad_ack", "one of"),
    (Ack, {"timestamp": 1, "game_name": "g"}, "bad_ack", "ack is missing"),
    (Forfeit, {"timestamp": 1}, "bad_game_name", "game_name is missing"),
])
def test_bad_fields_name_themselves_with_their_wire_code(cls, message, code, words):
    with pytest.raises(BadDatagram) as caught:
        structure(cls, message)
    assert caught.value.code == code
    assert words in caught.value.message


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
KEYS = st.sampled_from(["timestamp", "game_name", "self", "opponent", "user_blocks",
                        "user_score", "pieces_placed", "power_used", "power_ack", "ack", "ids"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([Connect, GameFlux, Ack, Forfeit]),
       st.dictionaries(KEYS, JSON, max_size=8))
def test_any_json_object_is_a_typed_datagram_or_one_bad_datagram(cls, message):
    try:
        read = structure(cls, message)
    except BadDatagram as exc:
        assert exc.code in set(messages.FIELD_CODES.values()) | {"bad_field"}
        assert exc.message
        return
    assert isinstance(read, cls)
    if hasattr(read, "timestamp") and read.timestamp is not None:
        assert type(read.timestamp) is int
    for name in ("power_ack", "ids"):
        assert all(type(i) is int for i in getattr(read, name, ()))


def test_server_datagrams_are_compact_json():
    duel = Duel(("ann", "ben"), seed=5, started=100.0)
    start = messages.game_start(7, "ba-1", duel, "ann", 101.0)
    assert start["self"] == "ann" and start["opponent"] == "ben"
    assert start["next_block"] == start["next_piece"]["shape"] and start["time_left"] == 179.0
    reply = json.loads(messages.game_flux(8, "ba-1", duel, "ben", 102.0, b"[[1]]", b"[[2]]"))
    assert reply["user_blocks"] == [[1]] and reply["opponent_blocks"] == [[2]]
    assert reply["timestamp"] == 8 and reply["power_applied"] == []
    assert b" " not in messages.encode({"a": [1, 2]})
    assert messages.error("bad_board") == {"command": "error", "error": "bad_board"}
    duel.forfeit("ben", 110.0)
    end = messages.game_end("ba-1", duel, {"ann": 1016.0, "ben": 984.0})
    assert end["winner"] == "ann" and end["reason"] == "forfeit" and "timestamp" not in end
