"""SIGTERM mid-match: players are told, the matches are recorded, the exit is clean."""

import json
import signal
import socket
import sqlite3
import time

from .harness import Daemon, Lines


def nova_login(port, name):
    client = Lines(port)
    client.send({"time": "2026-11-22T10:00:00", "sender": "unknown", "flag": "log_in_data",
                 "data": [name, "pw-" + name]})
    reply = client.wait_for(lambda m: m.get("flag") == "change_of_status")
    assert reply["data"][0] == "online", reply
    return client


def udp_player(port, name, opponent):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    stamp = int(time.time() * 1000)
    sock.sendto(json.dumps({"timestamp": stamp, "command": "connect", "self": name,
                            "opponent": opponent}).encode(), ("127.0.0.1", port))
    return sock


def read_udp(sock, command, limit=50):
    for _ in range(limit):
        message = json.loads(sock.recv(65536))
        if message.get("command") == command:
            return message
    raise AssertionError("no %s" % command)


def test_sigterm_mid_match_tells_players_records_and_exits(tmp_path):
    daemon = Daemon(tmp_path, "[shutdown]\ngrace_period = 20.0\n").start()
    try:
        one = nova_login(daemon.ports["novaglide"], "drainone")
        two = nova_login(daemon.ports["novaglide"], "draintwo")
        for client in (one, two):
            client.send({"time": "2026-11-22T10:00:00", "sender": 1, "flag": "queued_solo",
                         "data": ["no_data"]})
        for client in (one, two):
            client.wait_for(lambda m: m.get("flag") == "game_state_1")
        port = daemon.ports["blockattack"]
        a, b = udp_player(port, "drainudpa", "drainudpb"), udp_player(port, "drainudpb",
                                                                      "drainudpa")
        a.sendto(json.dumps({"timestamp": int(time.time() * 1000) + 5, "command": "connect",
                             "self": "drainudpa", "opponent": "drainudpb"}).encode(),
                 ("127.0.0.1", port))
        read_udp(a, "game_start")
        read_udp(b, "game_start")
        daemon.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        udp_ends = {}
        for sock, name in ((a, "drainudpa"), (b, "drainudpb")):
            end = read_udp(sock, "game_end")
            udp_ends[name] = end
            sock.sendto(json.dumps({"timestamp": int(time.time() * 1000) + 10, "command": "ack",
                                    "ack": "game_end", "game_name": end["game_name"]}).encode(),
                        ("127.0.0.1", port))
        for client in (one, two):
            seen = []
            try:
                while True:
                    seen.append(client.recv())
            except EOFError:
                pass  # closed by the server once the results were committed
            ends = [m for m in seen if m.get("flag") == "end_game_state_1"]
            assert ends and ends[0]["data"][1] is None  # aborted: no winner
            assert any(m.get("flag") == "change_of_status"
                       and m["data"][0] == "server_closing" for m in seen)
        assert all(end["reason"] == "server_shutdown" for end in udp_ends.values())
        code = daemon.proc.wait(timeout=30)
        # the games drained side by side and blockattack stopped once both had acked,
        # well inside the 20 s grace period
        assert time.monotonic() - signalled < 10.0

    finally:
        daemon.stop()
    assert code in (0, -signal.SIGTERM), daemon.log()
    assert "Traceback" not in daemon.log(), daemon.log()
    with sqlite3.connect(tmp_path / "gamed.sqlite3") as db:
        rows = db.execute("SELECT game, reason, ranked FROM matches ORDER BY id").fetchall()
        ratings = db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    assert ("novaglide", "aborted", 0) in rows
    assert ("blockattack", "server_shutdown", 0) in rows
    assert ratings == 0  # aborted matches change no rating
