"""Start the real daemon (`twistd gamed`) with every listener on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
LISTENERS = {  # name -> (section, key, kind)
    "novaglide": ("novaglide", "listen", "tcp"),
    "blockattack": ("blockattack", "listen", "udp"),
    "uttt_ws": ("uttt", "websocket", "tcp"),
    "uttt_tcp": ("uttt", "listen", "tcp"),
    "rooms_ws": ("rooms", "websocket", "tcp"),
    "rooms_tcp": ("rooms", "listen", "tcp"),
    "http": ("http", "listen", "tcp"),
}


def free_ports() -> dict:
    """One OS-chosen free port per listener (held until all are chosen)."""
    held, ports = [], {}
    try:
        for name, (_, _, kind) in LISTENERS.items():
            sock = socket.socket(socket.AF_INET,
                                 socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
            ports[name] = sock.getsockname()[1]
    finally:
        for sock in held:
            sock.close()
    return ports


class Daemon:
    def __init__(self, tmp_path, extra_config: str = "", database_url: str | None = None,
                 pidfile: bool = False):
        self.tmp = tmp_path
        self.pidfile = str(tmp_path / "gamed.pid") if pidfile else ""
        self.ports = free_ports()
        sections: dict = {}
        for name, (section, key, kind) in LISTENERS.items():
            sections.setdefault(section, []).append(
                '%s = "%s:%d:interface=127.0.0.1"' % (key, kind, self.ports[name]))
        url = database_url or "sqlite:///" + str(tmp_path / "gamed.sqlite3")
        text = '[database]\nurl = %s\n[accounts]\nbcrypt_cost = 4\n' % json.dumps(url)
        extra_sections = {}
        current = None
        for line in extra_config.splitlines():
            if line.startswith("["):
                current = line.strip("[] ")
                extra_sections.setdefault(current, [])
            elif line.strip() and current:
                extra_sections[current].append(line)
        for section in set(sections) | set(extra_sections):
            if section in ("database", "accounts"):
                continue
            text += "[%s]\n%s\n" % (section, "\n".join(sections.get(section, []) +
                                                       extra_sections.get(section, [])))
        self.config = tmp_path / "gamed.toml"
        self.config.write_text(text)
        self.log_path = tmp_path / "daemon.log"
        self.proc = None

    def start(self, timeout: float = 30.0):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=" + self.pidfile, "gamed", "--config", str(self.config)],
            cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.ports["http"]), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("daemon did not listen:\n" + self.log())

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("daemon ignored SIGTERM for %s s:\n%s" % (timeout, self.log()))

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up (a crash, the OOM killer, a power cut of the
        process)."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class Lines:
    """A blocking JSON-lines client."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, message) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def wait_for(self, predicate, limit: int = 200):
        for _ in range(limit):
            message = self.recv()
            if predicate(message):
                return message
        raise AssertionError("no matching message")

    def close(self) -> None:
        self.sock.close()
