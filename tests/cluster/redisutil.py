"""Test helpers: a blocking Redis client (a few commands), a private redis-server, and
waiting for a condition on the reactor."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from twisted.internet import defer, task

REDIS_URL = os.environ.get("GAMED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class BlockingRedis:
    """Enough of RESP for the tests' setup and cleanup."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, db: int = 0):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.file = self.sock.makefile("rb")
        if db:
            self.call("SELECT", db)

    def call(self, *args):
        self.sock.sendall(_encode(*args))
        return self._reply()

    def _reply(self):
        line = self.file.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))] if int(rest) >= 0 else None
        raise RuntimeError("bad reply %r" % line)

    def keys(self, prefix: str) -> list:
        found, cursor = [], "0"
        while True:
            cursor, batch = self.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            found += batch
            if cursor == "0":
                return sorted(set(found))

    def delete_prefix(self, prefix: str) -> None:
        keys = self.keys(prefix)
        if keys:
            self.call("DEL", *keys)

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class PrivateRedis:
    """A redis-server of the test's own (to stop and start it: Redis going away)."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.proc = None

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self) -> "PrivateRedis":
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                BlockingRedis(port=self.port).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


async def until(predicate, timeout: float = 20.0, what: str = "condition"):
    """Wait on the real reactor until predicate() is true (polled; generous deadline)."""
    from twisted.internet import reactor

    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await task.deferLater(reactor, 0.02, lambda: None)


def settle() -> defer.Deferred:
    from twisted.internet import reactor

    return task.deferLater(reactor, 0, lambda: None)
