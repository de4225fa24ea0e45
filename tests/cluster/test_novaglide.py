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


def test_a_killed_node_ends_its_part_of_cross_node_matches(start_node):
    """a is SIGKILLed with two cross-node matches going. One run on b: a's player counts
    as gone, forfeits after the rejoin grace, b's player wins (recorded once). One run on
    a: b's player is told `match_lost` and may queue again."""
    import signal

    extra = "[novaglide]\nrejoin_grace = 1.0\n"
    a, b = start_node("a", extra=extra), start_node("b", extra=extra)
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")

    def match(first, second, names):
        """The second to queue is paired by its own node (as a rule: the first one's
        pairing loop may be quicker), which runs the match; returns the running node."""
        first.send(packet("queued_solo", ["no_data"]))
        read_until(first, lambda m: m.get("flag") == "Waiting_for_opponent", "waiting")
        # once its node says so, the entry is in the cluster's queue
        while True:
            first.send(packet("waiting_for_opponent", ["no_data"]))
            status = read_until(first, lambda m: m.get("flag") == "change_of_status", "status")
            if status["data"][0] == "waiting_for_opponent":
                break
            time.sleep(0.1)  # (a client asking too often is refused)
        second.send(packet("queued_solo", ["no_data"]))
        for client in (first, second):
            read_until(client, lambda m: m.get("flag") == "game_state_1", "a state")
        return a if "%s vs %s" % names in a.log() else b

    ann, bob = novaglide_login(a, "ann_nk"), novaglide_login(b, "bob_nk")
    cid, dan = novaglide_login(b, "cid_nk"), novaglide_login(a, "dan_nk")
    # (a's player, b's player, where the match runs)
    matches = [(ann, bob, match(ann, bob, ("ann_nk", "bob_nk"))),
               (dan, cid, match(cid, dan, ("cid_nk", "dan_nk")))]
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    for on_a, on_b, runs_on in matches:
        name_b = "bob_nk" if on_b is bob else "cid_nk"
        name_a = "ann_nk" if on_a is ann else "dan_nk"
        if runs_on is b:  # a's player is gone: it forfeits after the grace
            end = read_until(on_b, lambda m: m.get("flag") == "end_game_state_1", "the win")
            assert end["data"][1] == name_b
            games = get(b, "/api/players/%s" % name_b)[1]["games"]
            assert games["novaglide"]["wins"] == 1
            assert get(b, "/api/players/%s" % name_a)[1]["games"]["novaglide"]["losses"] == 1
        else:  # the match died with a
            lost = read_until(on_b, lambda m: m.get("flag") == "error", "told")
            assert lost["data"][0] == "match_lost", lost
        on_b.send(packet("queued_solo", ["no_data"]))
        read_until(on_b, lambda m: m.get("flag") == "Waiting_for_opponent", "queued again")
        assert not get(b, "/api/players/%s" % name_a)[1]["online"]
