"""novaglide over a real loopback listener from make_service: login, a match at 60 Hz, bad input."""

import json
import socket

import pytest_twisted
from twisted.internet import threads

from gamed.core.config import set_option
from gamed.novaglide.service import make_service


class LineClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, flag, data):
        self.sock.sendall(json.dumps({"time": "2026-11-22T10:00:00", "sender": "x",
                                      "flag": flag, "data": data}).encode() + b"\r\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, flag):
        while True:
            reply = self.recv()
            if reply.get("flag") == flag:
                return reply

    def close(self):
        self.sock.close()


def script(port):
    one, two = LineClient(port), LineClient(port)
    try:
        one.sock.sendall(b"{not json\n")
        malformed = one.until("error")
        one.send("get_elo", ["ann"])
        before_login = one.until("error")
        one.send("log_in_data", ["ann", "pw"])
        status = one.until("change_of_status")
        two.send("log_in_data", ["ben", "pw"])
        two.until("change_of_status")
        one.send("queued_solo", ["no_data"])
        one.until("Waiting_for_opponent")
        two.send("queued_solo", ["no_data"])
        first = one.until("game_state_1")
        second = two.until("game_state_1")
        one.send("ingame", [[640, 360], ["d"], "wasd"])
        later = [one.until("game_state_1") for _ in range(5)]
        return malformed, before_login, status, first, second, later
    finally:
        one.close()
        two.close()


@pytest_twisted.ensureDeferred
async def test_a_match_over_loopback(core):
    core.config = set_option(core.config, "novaglide", "listen", "tcp:0:interface=127.0.0.1")
    top = make_service(core)
    top.startService()
    try:
        listener = [child for child in top if child is not top.game][0]
        port = (await listener._waitingForPort).getHost().port
        malformed, before_login, status, first, second, later = await threads.deferToThread(
            script, port)
    finally:
        await top.stopService()
    assert malformed["sender"] == "server" and malformed["data"][0] == "malformed_json"
    assert before_login["flag"] == "error"
    assert status["data"][:2] == ["online", "registering new user"]
    assert {first["player_id"], second["player_id"]} == {1, 2}
    assert all(isinstance(state["time"], str) for state in later)


def lines_until_closed(client, limit=100000):
    """Every message the server sends until it closes the connection."""
    seen = []
    try:
        while len(seen) < limit:
            seen.append(client.recv())
    except (EOFError, ConnectionResetError):
        return seen
    raise AssertionError("the server never closed the connection")


def matched_pair(port, names):
    one, two = LineClient(port), LineClient(port)
    for client, name in ((one, names[0]), (two, names[1])):
        client.send("log_in_data", [name, "pw"])
        client.until("change_of_status")
    one.send("queued_solo", ["no_data"])
    one.until("Waiting_for_opponent")
    two.send("queued_solo", ["no_data"])
    one.until("game_state_1")
    two.until("game_state_1")
    return one, two


def abuse(port):
    """Three matches; in two of them a player misbehaves (an oversize line, a flood);
    the third is played meanwhile and must not notice. The clients are left open for the
    caller to look at the game first."""
    calm = matched_pair(port, ("cal", "cem"))
    big = matched_pair(port, ("bea", "bob"))
    loud = matched_pair(port, ("lia", "leo"))
    clients = calm + big + loud
    try:
        big[0].sock.sendall(b'{"flag":"ingame","data":"' + b"x" * 5000 + b'"}\n')
        oversize = lines_until_closed(big[0])
        burst = b"".join(json.dumps({"time": "t", "sender": "x", "flag": "ingame",
                                     "data": [[1, 1], ["w"], "wsad"]}).encode() + b"\n"
                         for _ in range(2000))
        loud[0].sock.sendall(burst)
        flood = lines_until_closed(loud[0])
        calm[0].send("ingame", [[640, 360], ["s"], "wsad"])
        states = [calm[0].until("game_state_1") for _ in range(30)]
        their_view = [calm[1].until("game_state_1") for _ in range(30)]
        return clients, (oversize, flood, states, their_view)
    except BaseException:
        for client in clients:
            client.close()
        raise


@pytest_twisted.ensureDeferred
async def test_an_oversize_line_and_a_flood_close_only_their_own_connections(core):
    for key, value in (("listen", "tcp:0:interface=127.0.0.1"), ("max_line_length", 1024),
                       ("rate", 60.0), ("burst", 120), ("flood_close_after", 200)):
        core.config = set_option(core.config, "novaglide", key, value)
    top = make_service(core)
    top.startService()
    try:
        listener = [child for child in top if child is not top.game][0]
        port = (await listener._waitingForPort).getHost().port
        clients, seen = await threads.deferToThread(abuse, port)
        oversize, flood, states, their_view = seen
        running = {match.names: match for match in top.game.matches}
        gone = sorted(match.names[side - 1] for match in running.values()
                      for side in match.gone_since)
        for client in clients:
            client.close()
    finally:
        await top.stopService()
    assert [m["data"][0] for m in oversize if m["flag"] == "error"] == ["line_too_long"]
    flood_errors = [m["data"][0] for m in flood if m["flag"] == "error"]
    assert "rate_limited" in flood_errors and flood_errors[-1] == "flood"
    assert len(flood_errors) < 10  # told, not echoed once per refused line
    # the calm match went on at 60 Hz and its input moved cal's disc down
    side = states[0]["player_id"]
    assert {s["player_id"] for s in states} == {side}
    assert {s["player_id"] for s in their_view} == {3 - side}
    assert states[-1]["data"][7 if side == 1 else 9] > 360 + 10
    clock = [s["data"][1] for s in states]
    assert clock == sorted(clock, reverse=True) and clock[0] > clock[-1]
    # the two abusers' matches wait for them (rejoin grace); nobody else was dropped
    assert set(map(frozenset, running)) == {frozenset(pair) for pair in (
        ("cal", "cem"), ("bea", "bob"), ("lia", "leo"))}
    assert gone == ["bea", "lia"]
