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
