"""A server with workers under systemd: socket activation still works (the supervisor
takes the inherited socket, every worker serves on it), READY=1 comes once every worker
listens, STOPPING=1 when SIGTERM drains them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import json

from tests.cluster.redisutil import REDIS_URL
from tests.integration.test_systemd import ONLY_HTTP, TWISTD


def test_socket_activation_and_ready_with_workers(tmp_path, cluster_database, redis_prefix):
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen(16)
    port = held.getsockname()[1]
    config = tmp_path / "gamed.toml"
    config.write_text(ONLY_HTTP + '[http]\nlisten = "systemd:domain=INET:index=0"\n'
                      '[server]\nworkers = 2\n[database]\nurl = "%s"\n'
                      '[cluster]\nredis_url = "%s"\nkey_prefix = "%s"\nnode_name = "sd"\n'
                      'heartbeat = 0.2\ntimeout = 2.0\n'
                      % (cluster_database, REDIS_URL, redis_prefix))
    address = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(address)
    notify.settimeout(60)
    log_path = tmp_path / "log"

    def hand_over():
        os.dup2(held.fileno(), 3)  # systemd passes the first socket as fd 3

    argv = [TWISTD, "-n", "--pidfile=", "gamed", "--config", str(config)]
    proc = subprocess.Popen(
        ["/bin/sh", "-c", "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http; exec "
         + " ".join(argv)], cwd=tmp_path, stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT, preexec_fn=hand_over, close_fds=False,
        env=dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=address))
    held.close()
    try:
        ready = notify.recv(4096).decode()
        assert "READY=1" in ready.splitlines(), ready
        log = log_path.read_text()
        for worker in ("sd-w0", "sd-w1"):
            assert "supervisor: worker %s listening" % worker in log
        deadline = time.monotonic() + 30
        answered = set()
        while len(answered - {None}) < 2:  # both workers serve on the one inherited socket
            assert time.monotonic() < deadline, log_path.read_text()
            body = health(port)
            if body.get("status") == "ok":
                answered.add(body["node"])
                if len(answered) < 2:  # pause the one that answered: the other accepts
                    pid = worker_pid(log_path.read_text(), body["node"])
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        answered.add(health(port).get("node"))
                    finally:
                        os.kill(pid, signal.SIGCONT)
            time.sleep(0.1)
        assert answered - {None} == {"sd-w0", "sd-w1"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=40)
    stopping = notify.recv(4096).decode()
    assert "STOPPING=1" in stopping.splitlines()
    assert code in (0, -signal.SIGTERM), log_path.read_text()


def health(port: int) -> dict:
    """/healthz's answer, 503 included (a worker that listens before it reached Redis)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def worker_pid(log: str, node: str) -> int:
    import re

    return int(re.findall(r"worker %s started \(pid (\d+)\)" % re.escape(node), log)[-1])
