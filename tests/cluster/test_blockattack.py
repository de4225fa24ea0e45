"""Block Attack on two real nodes: `connect` pairs players who reached different nodes,
the game runs on one of them and the other forwards its player's datagrams both ways;
a stranger's datagrams are not forwarded and never answered with game data."""

from __future__ import annotations

import json
import socket
import time
import types

from gamed.blockattack.client import BlockattackClient
from tests.cluster.test_daemons import get, wait_for


class UdpPlayer:
    def __init__(self, daemon, name, opponent):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.server = ("127.0.0.1", daemon.ports["blockattack"])
        self.client = BlockattackClient(name, opponent,
                                        lambda data: self.sock.sendto(data, self.server),
                                        types.SimpleNamespace(seconds=time.time))
        self.received = []

    def drain(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                return
            self.received.append(json.loads(data))
            self.client.received(data)


def pump(players, step, done, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        for player in players:
            step(player)
            player.drain()


def test_blockattack_across_two_nodes(start_node):
    a, b = start_node("a"), start_node("b")
    wait_for(lambda: get(a, "/healthz")[0] == 200 and get(b, "/healthz")[0] == 200, "up")
    xena, yuri = UdpPlayer(a, "xena_ba", "yuri_ba"), UdpPlayer(b, "yuri_ba", "xena_ba")
    both = (xena, yuri)
    pump(both, lambda p: p.client.connect(), lambda: xena.client.start and yuri.client.start,
         "game_start on both nodes")
    assert xena.client.game_name == yuri.client.game_name
    pump(both, lambda p: p.client.flux(), lambda: xena.client.state and yuri.client.state,
         "game_flux replies")
    # each sees the other's board: the game is one, wherever it runs
    assert xena.client.state["opponent_blocks"] == yuri.client.board
    # a stranger naming the game on either node gets no game data back
    for daemon in (a, b):
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.settimeout(0.3)
        stranger.sendto(json.dumps({"timestamp": int(time.time() * 1000) + 10 ** 6,
                                    "command": "game_flux",
                                    "game_name": xena.client.game_name}).encode(),
                        ("127.0.0.1", daemon.ports["blockattack"]))
        try:
            reply = json.loads(stranger.recvfrom(65536)[0])
            assert reply["command"] == "error", reply
        except socket.timeout:
            pass
        stranger.close()
    pump([yuri], lambda p: p.client.forfeit(), lambda: yuri.client.end is not None,
         "game_end after the forfeit")
    pump([xena], lambda p: None, lambda: xena.client.end is not None, "game_end on x")
    assert xena.client.end["winner"] == "xena_ba"
    wait_for(lambda: get(b, "/api/players/xena_ba")[1]["games"].get("blockattack"),
             "the result recorded once")
    record = get(a, "/api/players/xena_ba")[1]["games"]["blockattack"]
    assert record["wins"] == 1


def test_a_killed_node_ends_or_unbinds_the_games_it_took_part_in(start_node):
    """a is SIGKILLed mid-play. A game run on b with a player on a ends at once as the
    silence rule would end it (b's player wins, recorded once); a player of b whose game
    ran on a is no longer forwarded (its next datagram for it gets `unknown_game`) and may
    connect again."""
    import signal

    extra = "[blockattack]\nsilence_timeout = 60.0\n"  # the end must not come from it
    a, b = start_node("a", extra=extra), start_node("b", extra=extra)
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")
    # who connects first waits; the second one's node pairs them and runs the game
    xena, yuri = UdpPlayer(a, "xena_bk", "yuri_bk"), UdpPlayer(b, "yuri_bk", "xena_bk")
    wes, zoe = UdpPlayer(b, "wes_bk", "zoe_bk"), UdpPlayer(a, "zoe_bk", "wes_bk")
    for first, second in ((xena, yuri), (wes, zoe)):
        first.client.connect()
        pump([first], lambda p: None, lambda: any(m.get("command") == "waiting"
                                                  for m in first.received), "waiting")
        pump([second], lambda p: p.client.connect(), lambda: second.client.start,
             "game_start for the second")
        pump([first], lambda p: None, lambda: first.client.start, "game_start forwarded")
    everyone = (xena, yuri, wes, zoe)
    pump(everyone, lambda p: p.client.flux(), lambda: all(p.client.state for p in everyone),
         "everyone reported")
    assert "xena_bk vs yuri_bk" in b.log() and "wes_bk vs zoe_bk" in a.log()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    pump([yuri, wes], lambda p: p.client.flux(),
         lambda: yuri.client.end is not None and any(
             m.get("command") == "error" and m.get("error") == "unknown_game"
             for m in wes.received), "b ends yuri's game and unbinds wes", timeout=20)
    assert yuri.client.end["winner"] == "yuri_bk"
    assert yuri.client.end["reason"] == "timeout"
    record = get(b, "/api/players/yuri_bk")[1]["games"]["blockattack"]
    assert record["wins"] == 1
    # no ghost: xena counts as online on b only while her game lingers for yuri's ack
    wait_for(lambda: not get(b, "/api/players/xena_bk")[1]["online"], "xena offline")
    # wes is free to play again, here (its client back at its menu, a new socket)
    wes, vic = UdpPlayer(b, "wes_bk", "vic_bk"), UdpPlayer(b, "vic_bk", "wes_bk")
    pump([wes, vic], lambda p: p.client.connect(), lambda: wes.client.start and vic.client.start,
         "a new game for wes")
