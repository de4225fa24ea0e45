"""uttt in the real daemon: every acknowledged move survives a crash (SIGKILL) or a stop,
on SQLite and on PostgreSQL.

`twistd gamed` runs with only the uttt listeners. Two WebSocket clients play; the daemon is
killed right after the last acknowledged move and started again on the same database;
the players resume their sessions and find the match exactly as last announced.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
MOVES = [(0, 0, 0, 1), (0, 1, 0, 0), (0, 0, 1, 1), (1, 1, 0, 0), (0, 0, 2, 1),
         (2, 1, 1, 0), (1, 0, 0, 2)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    def __init__(self, tmp_path, database_url):
        self.ws_port, self.lines_port = free_port(), free_port()
        self.config = tmp_path / "gamed.toml"
        self.config.write_text(
            '[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
            '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
            '[uttt]\nwebsocket = "tcp:%d:interface=127.0.0.1"\n'
            'listen = "tcp:%d:interface=127.0.0.1"\n'
            '[rooms]\nwebsocket = ""\nlisten = ""\n[http]\nlisten = ""\n'
            % (database_url, self.ws_port, self.lines_port))
        self.log = tmp_path / "gamed.log"
        self.cwd = tmp_path
        self.proc = None

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [TWISTD, "-n", "--pidfile=", "gamed", "--config", str(self.config)],
                cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", self.ws_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the daemon did not listen:\n" + self.log.read_text()[-3000:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None


@pytest.fixture
def daemon(tmp_path, database_url):
    """The daemon on a fresh SQLite file or an emptied PostgreSQL database."""
    running = Daemon(tmp_path, database_url)
    running.start()
    yield running
    running.stop(signal.SIGKILL)


class Client:
    def __init__(self, port):
        import websocket

        self.ws = websocket.create_connection("ws://127.0.0.1:%d/" % port, timeout=5)
        self.pending = []

    def send(self, type_, data):
        self.ws.send(json.dumps({"type": type_, "data": data}))

    def wait(self, type_, pred=lambda d: True):
        for i, message in enumerate(self.pending):
            if message["type"] == type_ and pred(message["data"]):
                return self.pending.pop(i)["data"]
        while True:
            message = json.loads(self.ws.recv())
            if message["type"] == type_ and pred(message["data"]):
                return message["data"]
            self.pending.append(message)


def session(port, name, pw):
    client = Client(port)
    client.send("login", {"name": name, "pw": pw})
    reply = client.wait("login_response")
    assert reply["success"], reply
    return client, reply["id"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_acknowledged_moves_survive_a_crash_or_a_stop(daemon, sig):
    a, token_a = session(daemon.ws_port, "crash_a", "pw-a")
    b, token_b = session(daemon.ws_port, "crash_b", "")  # a temporary session
    a.send("match_request", {"player": "crash_b"})
    match_id = b.wait("match_update")["id"]
    last = None
    for index, move in enumerate(MOVES):
        mover = (a, b)[index % 2]
        mover.send("move", dict(zip(("sub_x", "sub_y", "x", "y"), move), id=match_id))
        last = mover.wait("match_update", lambda d: d["match_state"]["last_move"] is not None
                          and tuple(d["match_state"]["last_move"].values()) == move)
    daemon.stop(sig)  # right after the last acknowledgement
    daemon.start()
    again_a = Client(daemon.ws_port)
    again_a.send("reconnect", {"id": token_a})
    assert again_a.wait("reconnect_response")["user"] == "crash_a"
    assert again_a.wait("match_update")["match_state"] == last["match_state"]
    again_b = Client(daemon.ws_port)
    again_b.send("reconnect", {"id": token_b})
    reply = again_b.wait("reconnect_response")
    assert reply["success"] and reply["registered"] is False
    resumed = again_b.wait("match_update")
    assert resumed["match_state"]["active_player"] == "crash_b"
    # and the game goes on from there
    again_b.send("move", {"id": match_id, "sub_x": 0, "sub_y": 2, "x": 1, "y": 0})
    after = again_a.wait("match_update", lambda d: d["match_state"]["active_player"] == "crash_a")
    assert after["match_state"]["last_move"] == {"sub_x": 0, "sub_y": 2, "x": 1, "y": 0}
