"""novaglide on two real nodes: one queue for both, the match runs on one node at 60 Hz
and the player of the other node plays it through the bus (inputs in, states and the end
out); a player who leaves loses after the rejoin grace, and the result is recorded once."""

from __future__ import annotations

import time

from tests.cluster.test_daemons import get, novaglide_login, wait_for

STAMP = "2026-12-02T10:00:00"


def packet(flag, data):
    return {"time": STAMP, "sender": "me", "flag": flag, "data": data}


def read_until(client, predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = client.recv()
        if predicate(message):
            return message
    raise AssertionError("timed out waiting for " + what)


def test_novaglide_across_two_nodes(start_node):
    extra = "[novaglide]\nrejoin_grace = 1.0\n"
    a, b = start_node("a", extra=extra), start_node("b", extra=extra)
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")
    ann, bob = novaglide_login(a, "ann_ng"), novaglide_login(b, "bob_ng")
    for client in (ann, bob):
        client.send(packet("queued_solo", ["no_data"]))
    states = [read_until(c, lambda m: m.get("flag") == "game_state_1", "a state")
              for c in (ann, bob)]
    ann_side, bob_side = states[0]["data"][0], states[1]["data"][0]
    assert {ann_side, bob_side} == {1, 2}
    assert states[0]["data"][4:6] == states[1]["data"][4:6]  # one match, both names
    # bob (on b) runs toward the centre; ann (on a) sees his disc move
    x_index = 6 if bob_side == 1 else 8
    start_x = states[0]["data"][x_index]
    key = "d" if bob_side == 1 else "a"

    def moved(message):
        if message.get("flag") != "game_state_1":
            return False
        bob.send(packet("ingame", [[640, 360], [key], "wsad"]))
        return abs(message["data"][x_index] - start_x) > 50

    read_until(ann, moved, "bob's input to reach the running match")
    wait_for(lambda: get(a, "/api/players/bob_ng")[1]["playing"] == ["novaglide"], "online")
    # bob leaves: past the rejoin grace the running node ends the match; ann wins
    bob.close()
    end = read_until(ann, lambda m: m.get("flag") == "end_game_state_1", "the end")
    assert end["data"][1] == "ann_ng"
    wait_for(lambda: get(b, "/api/players/ann_ng")[1]["games"].get("novaglide"), "recorded")
    assert get(b, "/api/players/ann_ng")[1]["games"]["novaglide"]["wins"] == 1
    assert get(a, "/api/players/bob_ng")[1]["games"]["novaglide"]["losses"] == 1
