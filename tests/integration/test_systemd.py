"""systemd integration of the real daemon: sd_notify READY/STOPPING and inherited sockets."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ONLY_HTTP = ('[accounts]\nbcrypt_cost = 4\n[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
             '[uttt]\nwebsocket = ""\nlisten = ""\n[rooms]\nwebsocket = ""\nlisten = ""\n')


def start(tmp_path, http_listen, env=None, preexec_fn=None, shell_prefix=""):
    config = tmp_path / "gamed.toml"
    config.write_text(ONLY_HTTP + '[http]\nlisten = "%s"\n' % http_listen)
    log = open(tmp_path / "log", "w")
    argv = [TWISTD, "-n", "--pidfile=", "gamed", "--config", str(config)]
    if shell_prefix:
        argv = ["/bin/sh", "-c", shell_prefix + " exec " + " ".join(argv)]
    return subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
                            preexec_fn=preexec_fn, close_fds=preexec_fn is None)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_sd_notify_ready_then_stopping(tmp_path):
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(30)
    proc = start(tmp_path, "tcp:0:interface=127.0.0.1", env={"NOTIFY_SOCKET": address})
    try:
        ready = listener.recv(4096).decode()
        assert "READY=1" in ready.splitlines()
        assert "Site starting on" in (tmp_path / "log").read_text()  # listening before READY
    finally:
        code = stop(proc)
    stopping = listener.recv(4096).decode()
    assert "STOPPING=1" in stopping.splitlines()
    assert code in (0, -signal.SIGTERM)


def test_serves_on_an_inherited_socket(tmp_path):
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen(16)
    port = held.getsockname()[1]

    def hand_over():
        os.dup2(held.fileno(), 3)  # systemd passes the first socket as fd 3

    proc = start(tmp_path, "systemd:domain=INET:index=0", preexec_fn=hand_over,
                 shell_prefix="export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http;")
    held.close()  # only the daemon holds it now
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                            timeout=2) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "log").read_text())
                time.sleep(0.1)
    finally:
        stop(proc)
