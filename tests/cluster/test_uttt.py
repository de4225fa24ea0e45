"""uttt on two real nodes: the random queue and invites pair players on different nodes,
every match_update / friends_update / elo_update reaches the player wherever it is, the
database judges two nodes' moves on one match, and a node killed mid-play leaves its
players to go on from the other node."""

from __future__ import annotations

import json
import signal
import socket

from tests.cluster.test_daemons import get, wait_for


class Player:
    """A blocking uttt client over TCP JSON lines that keeps what it did not wait for."""

    def __init__(self, daemon, timeout: float = 15.0):
        self.sock = socket.create_connection(("127.0.0.1", daemon.ports["uttt_tcp"]),
                                             timeout=timeout)
        self.buf = b""
        self.pending: list = []

    def send(self, type_, data):
        self.sock.sendall(json.dumps({"type": type_, "data": data}).encode() + b"\n")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def wait(self, type_, pred=lambda d: True):
        for i, message in enumerate(self.pending):
            if message["type"] == type_ and pred(message["data"]):
                return self.pending.pop(i)["data"]
        while True:
            message = self._read()
            if message["type"] == type_ and pred(message["data"]):
                return message["data"]
            self.pending.append(message)

    def login(self, name, pw):
        self.send("login", {"name": name, "pw": pw})
        reply = self.wait("login_response")
        assert reply["success"], reply
        return reply["id"]

    def close(self):
        self.sock.close()


def moved(move):
    def pred(data):
        last = data["match_state"]["last_move"]
        return last is not None and (last["sub_x"], last["sub_y"], last["x"], last["y"]) == move
    return pred


def play(mover, others, match_id, move):
    mover.send("move", dict(zip(("sub_x", "sub_y", "x", "y"), move), id=match_id))
    return [p.wait("match_update", lambda d: d["id"] == match_id and moved(move)(d))
            for p in (mover, *others)]


def test_uttt_across_two_nodes(start_node):
    a, b = start_node("a"), start_node("b")
    ann, bob = Player(a), Player(b)
    token_ann = ann.login("ann_x", "pw-ann")
    bob.login("bob_x", "pw-bob")
    wait_for(lambda: get(a, "/api/players/bob_x")[1]["online"], "a sees bob")
    wait_for(lambda: get(b, "/api/players/ann_x")[1]["online"], "b sees ann")

    # friends: bob (on b) hears of ann's request made on a, and sees her online
    ann.send("friend_request", {"user": "bob_x"})
    assert ann.wait("friend_request_response")["success"]
    friends = bob.wait("friends_update", lambda d: d["friends"] == ["ann_x"])
    assert friends["online"] == [True]

    # the random queue pairs players of different nodes; the waiting one (ann) starts
    ann.send("match_request", {"player": None})
    assert "waiting" in ann.wait("match_request_response")["msg"]
    bob.send("match_request", {"player": None})
    assert bob.wait("match_request_response")["success"]
    started = [p.wait("match_update", lambda d: d["match_state"]["last_move"] is None)
               for p in (ann, bob)]
    match_id = started[0]["id"]
    assert started[1]["id"] == match_id
    assert started[0]["match_state"]["active_player"] == "ann_x"

    # each move, made on either node, reaches both players once committed
    play(ann, [bob], match_id, (1, 1, 0, 0))
    play(bob, [ann], match_id, (0, 0, 1, 1))

    # two nodes, one match: ann plays two different moves at once from both nodes; the
    # database lets exactly one of them be the match's next move
    ann_b = Player(b)
    ann_b.send("reconnect", {"id": token_ann})
    assert ann_b.wait("reconnect_response")["success"]
    ann_b.wait("match_update", lambda d: d["id"] == match_id)
    ann.send("move", {"id": match_id, "sub_x": 1, "sub_y": 1, "x": 2, "y": 2})
    ann_b.send("move", {"id": match_id, "sub_x": 1, "sub_y": 1, "x": 2, "y": 0})
    bob.send("match_states_request", {})
    after = bob.wait("match_update", lambda d: d["id"] == match_id
                     and d["match_state"]["active_player"] == "bob_x")
    winner = after["match_state"]["last_move"]
    assert (winner["x"], winner["y"]) in ((2, 2), (2, 0))
    for client in (ann, ann_b):
        client.send("match_states_request", {})
        state = client.wait("match_update", lambda d: d["id"] == match_id
                            and d["match_state"]["active_player"] == "bob_x")
        assert state["match_state"]["last_move"] == winner
    ann_b.close()

    # an invite made on a reaches bob on b
    ann.send("match_request", {"player": "BOB_X"})
    invite = bob.wait("match_request", lambda d: d.get("player") == "ann_x")
    second = invite["id"]
    assert bob.wait("match_update", lambda d: d["id"] == second)["match_state"][
        "player_a"] == "ann_x"

    # bob gives the first match up on b: ann wins; both get their new rating, and ann's
    # friends list on a shows bob's
    bob.send("end_match", {"id": match_id})
    final = ann.wait("match_update", lambda d: d["id"] == match_id
                     and d["match_state"]["game_over"])
    assert final["match_state"]["player_won"] == "ann_x"
    assert ann.wait("elo_update", lambda d: d["elo"] > 1000)["elo"] > 1000
    assert bob.wait("elo_update", lambda d: d["elo"] < 1000)["elo"] < 1000
    assert ann.wait("friends_update", lambda d: d["elos"] and d["elos"][0] < 1000)

    # a is killed mid-play: ann goes on from b with her session, finds her open match
    ann.send("move", {"id": second, "sub_x": 0, "sub_y": 0, "x": 2, "y": 2})
    bob.wait("match_update", lambda d: d["id"] == second and moved((0, 0, 2, 2))(d))
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    again = Player(b)
    again.send("reconnect", {"id": token_ann})
    assert again.wait("reconnect_response")["success"]
    resumed = again.wait("match_update", lambda d: d["id"] == second)
    assert resumed["match_state"]["active_player"] == "bob_x"
    play(bob, [again], second, (2, 2, 0, 0))
    play(again, [bob], second, (0, 0, 0, 0))


def test_a_drained_node_leaves_its_players_to_go_on_elsewhere(start_node):
    """Rolling restart: SIGTERM drains a; its player reconnects to b and plays on; a has
    left the cluster at once (no wait for the heartbeat timeout)."""
    a, b = start_node("a"), start_node("b")
    ann, bob = Player(a), Player(b)
    token_ann = ann.login("ann_r", "pw-ann")
    bob.login("bob_r", "pw-bob")
    wait_for(lambda: get(a, "/api/players/bob_r")[1]["online"], "a sees bob")
    ann.send("match_request", {"player": "bob_r"})
    match_id = bob.wait("match_update")["id"]
    play(ann, [bob], match_id, (1, 1, 1, 1))
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(30) in (0, -signal.SIGTERM), a.log()
    assert "cluster: node a left" in a.log()
    wait_for(lambda: not get(b, "/api/players/ann_r")[1]["online"], "b forgets ann")
    again = Player(b)
    again.send("reconnect", {"id": token_ann})
    assert again.wait("reconnect_response")["success"]
    assert again.wait("match_update", lambda d: d["id"] == match_id)["match_state"][
        "active_player"] == "bob_r"
    play(bob, [again], match_id, (1, 1, 0, 0))
    play(again, [bob], match_id, (0, 0, 2, 2))


def test_redis_away_players_play_on_and_catch_up_when_it_is_back(start_node, tmp_path):
    from tests.cluster.redisutil import PrivateRedis

    redis = PrivateRedis(tmp_path).start()
    try:
        a, b = start_node("a", redis.url), start_node("b", redis.url)
        ann, bob = Player(a), Player(b)
        ann.login("ann_o", "pw-ann")
        bob.login("bob_o", "pw-bob")
        wait_for(lambda: get(a, "/api/players/bob_o")[1]["online"], "a sees bob")
        ann.send("match_request", {"player": "bob_o"})
        assert ann.wait("match_request_response")["success"]
        match_id = bob.wait("match_update")["id"]
        play(ann, [bob], match_id, (1, 1, 1, 1))
        redis.stop()
        wait_for(lambda: get(b, "/healthz")[0] == 503, "b cut off")
        # bob plays on; the move is committed (its node answers), the news cannot travel
        bob.send("move", {"id": match_id, "sub_x": 1, "sub_y": 1, "x": 0, "y": 0})
        bob.wait("match_update", lambda d: moved((1, 1, 0, 0))(d))
        # random matching goes on within each node: cid and ann (both on a) meet there;
        # bob (on b) waits in b's own queue meanwhile
        cid = Player(a)
        cid.login("cid_o", "pw-cid")
        cid.send("match_request", {"player": None})
        assert "waiting" in cid.wait("match_request_response")["msg"]
        ann.send("match_request", {"player": None})
        assert ann.wait("match_request_response")["success"]
        local = cid.wait("match_update", lambda d: d["match_state"]["last_move"] is None)
        assert ann.wait("match_update", lambda d: d["id"] == local["id"])
        bob.send("match_request", {"player": None})
        assert "waiting" in bob.wait("match_request_response")["msg"]
        redis.start()
        # back together: a brings ann up to date with what happened meanwhile
        caught = ann.wait("match_update", lambda d: d["id"] == match_id
                          and moved((1, 1, 0, 0))(d))
        assert caught["match_state"]["active_player"] == "ann_o"
        play(ann, [bob], match_id, (0, 0, 2, 2))
        # bob's request, taken while b was cut off, now waits in the cluster's queue
        wait_for(lambda: get(a, "/healthz")[0] == 200, "a back")
        cid.send("match_request", {"player": None})
        assert cid.wait("match_request_response")["success"]
        cross = bob.wait("match_update", lambda d: d["match_state"]["last_move"] is None
                         and "cid_o" in (d["match_state"]["player_a"],
                                         d["match_state"]["player_b"]))
        assert cid.wait("match_update", lambda d: d["id"] == cross["id"])
    finally:
        redis.stop()
