"""Novaglide's wire shapes: ingame input parsing and the state packet's encoding."""

import json

import pytest

from gamed.novaglide.messages import parse_input, state_packet, state_tail
from gamed.novaglide.rules import Arena, Input


def keys(*names, mouse=(640, 360), scheme="wsad"):
    return Input(mouse, frozenset(names), scheme)


@pytest.mark.parametrize("data", [None, [], [[1, 2]], [[1], [], "wsad"], [["x", 2], [], "wsad"],
                                  [[1, 2], "d", "wsad"], [[1, 2], [5], "wsad"],
                                  [[1, 2], [], 7], [[float("nan"), 2], [], "wsad"],
                                  [[1, 2], ["d"] * 50, "wsad"], [[10 ** 400, 2], [], "wsad"],
                                  [[True, 2], [], "wsad"]])
def test_bad_ingame_data_is_refused(data):
    with pytest.raises(ValueError):
        parse_input(data)


def test_parse_input():
    control = parse_input([[10, 20.5], ["D", "space"], "WSAD"])
    assert control == Input((10.0, 20.5), frozenset({"d", "space"}), "wsad")


def test_the_wire_encoding_matches_state_fields():
    arena = Arena()
    for _ in range(45):
        arena.step({1: keys("d", "space", mouse=(900, 200)), 2: keys("lshift", mouse=(0, 0))})
    fields = arena.state_fields(('a"nn', "ben"))
    decoded = json.loads("[" + state_tail(arena, json.dumps(['a"nn', "ben"])[1:-1]) + "]")
    assert len(decoded) == 22
    for got, want in zip(decoded, fields):
        assert got == (pytest.approx(want, abs=0.01) if isinstance(want, float) else want)


def test_state_packet_is_the_seed_shape():
    arena = Arena()
    text = state_packet("2026-11-22T10:00:00+00:00", 2,
                        state_tail(arena, json.dumps(["ann", "ben"])[1:-1]))
    message = json.loads(text)
    assert message["player_id"] == 2 and message["flag"] == "game_state_1"
    assert message["sender"] == "server" and len(message["data"]) == 23
    assert message["data"][0] == 2
