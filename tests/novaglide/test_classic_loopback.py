"""Proof over a real loopback listener: the original desktop client's exact bytes and
lockstep (greeting first, one `pickle.loads(recv(2048))` per `send(pickle.dumps(request))`)
through login, every menu request, the queue, a whole match against a JSON-lines player at
the server's 60 Hz, and the end screen; the result is recorded once."""

import pickle
import socket

import pytest_twisted
from twisted.internet import threads

from gamed.core.config import set_option
from gamed.novaglide.service import make_service

from .classic_client import pressed, request, scancode_wrapper_registered
from .test_wire import LineClient


class OriginalClient:
    """`src/networking/network.py` of the client, reproduced: no framing, no timeout of its
    own (the test adds one so that a hang fails instead of blocking the run)."""

    def __init__(self, port):
        self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.client.settimeout(10)
        self.client.connect(("127.0.0.1", port))
        self.greeting = self.client.recv(2048).decode()
        self.id = "uknown"
        self.sizes = []

    def send(self, flag, data, raw=None):
        self.client.send(raw or request(flag, data, self.id))
        reply = self.client.recv(2048)
        self.sizes.append(len(reply))
        return pickle.loads(reply)

    def close(self):
        self.client.close()


def play(classic_port, json_port, wrapper):
    client = OriginalClient(classic_port)
    json_player = LineClient(json_port)
    seen = {"greeting": client.greeting}
    try:
        login = client.send("log_in_data", ["ann", "secret"])
        client.id = login["data"][2]
        seen["login"] = login
        status = "online"
        seen["menu"] = [client.send(status, ["no_data"]) for _ in range(5)]
        seen["elo"] = client.send("get_elo", ["ann"])
        seen["challengers"] = client.send("get_challengers", ["no_data"])
        seen["winrate"] = client.send("get_winrate", ["ann"])
        seen["history"] = client.send("get_match_history", ["ann"])
        seen["queued"] = client.send("queued_solo", ["no_data"])
        status = "Waiting_for_opponent"
        json_player.send("log_in_data", ["ben", "pw"])
        json_player.until("change_of_status")
        json_player.send("queued_solo", ["no_data"])
        polls = 0
        while True:  # the loading screen polls until a state comes
            reply = client.send(status, ["no_data"])
            polls += 1
            if reply["flag"] == "game_state_1":
                break
        json_player.send("ingame", [[1180, 0], ["w"], "wsad"])  # ben steps aside
        seen["waiting_polls"] = polls
        status = "ingame"
        keys = request("ingame", [(640, 360), pressed(wrapper, "d"), "wsad"], client.id)
        states = [reply]
        while reply["flag"] == "game_state_1":
            reply = client.send("ingame", None, raw=keys)
            states.append(reply)
        seen["states"], seen["end"] = states[:-1], reply
        status = "online"
        seen["end_screen"] = [client.send(status, ["no_data"]) for _ in range(3)]
        seen["history_after"] = client.send("get_match_history", ["ann"])
        seen["sizes"] = client.sizes
        return seen
    finally:
        client.close()
        json_player.close()


@pytest_twisted.ensureDeferred
async def test_the_original_clients_whole_session(core):
    for key, value in (("listen", "tcp:0:interface=127.0.0.1"),
                       ("classic_listen", "tcp:0:interface=127.0.0.1"),
                       ("match_seconds", 1.0)):
        core.config = set_option(core.config, "novaglide", key, value)
    top = make_service(core)
    top.startService()
    try:
        lines, classic = [child for child in top if child is not top.game]
        json_port = (await lines._waitingForPort).getHost().port
        classic_port = (await classic._waitingForPort).getHost().port
        with scancode_wrapper_registered() as wrapper:
            seen = await threads.deferToThread(play, classic_port, json_port, wrapper)
    finally:
        await top.stopService()
    assert seen["greeting"] == "Welcome, please fill the credentials!"
    assert seen["login"]["data"][:2] == ["online", "registering new user"]
    assert all(m["flag"] == "change_of_status" for m in seen["menu"])
    elo, floor = seen["elo"]["data"]
    assert type(elo) is int and max(f[0] for f in floor[:2]) >= 0
    assert seen["winrate"]["data"] == [0] and seen["history"]["data"] == [[], []]
    assert seen["queued"]["flag"] == "Waiting_for_opponent"
    states = seen["states"]
    assert all(s["flag"] == "game_state_1" and len(s["data"]) == 23 for s in states)
    end = seen["end"]
    assert end["flag"] == "end_game_state_1"
    stats, winner = end["data"]
    assert winner == "ann" and stats["ann"]["elo"] == elo and type(stats["ben"]["elo"]) is int
    assert all(m["flag"] == "change_of_status" for m in seen["end_screen"])
    [row] = seen["history_after"]["data"][0]
    assert row[1:3] == ("ann", "ben") and row[5:7] == (1, 0)
    assert max(seen["sizes"]) <= 1400
