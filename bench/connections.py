"""Idle connections held by one daemon: memory each, time to accept them, and a normal
player's request latency while they are held.

    python bench/connections.py [--levels 5000,10000,19500] [--per-worker 5000]
                                [--probes 400] [--no-login] [--transports both|lines|websocket]

For each level N the real daemon (`twistd gamed`, rooms only: TCP JSON lines and WebSocket,
`max_connections` raised, every other limit at its default) is started afresh, and a
quiet player measures its request round trip (rooms `room_create` / `room_leave`: no
database, so it is the reactor's answer time). Then N idle players connect, half on each
listener, spread over client processes of at most --per-worker connections (the
machine's open-files hard limit is per process); each completes the WebSocket handshake,
logs in to the lobby (unless --no-login) and then only answers the server's pings, like a
browser tab left open. Measured: the time to accept and log in all N, the daemon's
resident memory and open descriptors before and after (memory per connection = the
difference / N), and the quiet player's p50/p99 while they are held, as a ratio to the
same player's figures before they came (same run).

The daemon cannot hold more descriptors than its own hard limit (RLIMIT_NOFILE, printed);
levels above it are cut to what fits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
from support import free_port, listen, start_daemon  # noqa: E402 (bench/ on sys.path)

HANDSHAKE = ("GET /lobby HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n")
CONCURRENT_CONNECTS = 256  # per worker: the listen backlog is 50


# -- the idle players (one worker process each) ----------------------------------------------

def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    size = len(payload)
    head = bytes([0x80 | opcode, 0x80 | size]) if size < 126 else (
        bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big"))
    return head + b"\0\0\0\0" + payload  # a zero mask: the payload goes as it is


def login_line(index: int) -> bytes:
    return json.dumps({"id": 0, "type": "login", "details": {
        "username": "idle%d" % index, "avatar": 1, "color": 0, "border_color": 0}}).encode()


async def ws_reader(reader, writer) -> None:
    """Answer pings (with the same payload); ignore everything else."""
    try:
        while True:
            head = await reader.readexactly(2)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(size)
            if head[0] & 0x0F == 0x9:
                writer.write(ws_frame(payload, 0xA))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


async def lines_reader(reader) -> None:
    try:
        while await reader.readline():
            pass
    except (ConnectionError, ValueError):
        pass


async def idle_player(port: int, websocket: bool, index: int, login: bool, gate, tasks,
                      writers) -> None:
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        if websocket:
            writer.write((HANDSHAKE % port).encode())
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            if login:
                writer.write(ws_frame(login_line(index)))
                head = await reader.readexactly(2)
                await reader.readexactly(head[1] & 0x7F if head[1] & 0x7F < 126 else
                                         int.from_bytes(await reader.readexactly(2), "big"))
            tasks.append(asyncio.ensure_future(ws_reader(reader, writer)))
        else:
            if login:
                writer.write(login_line(index) + b"\n")
                await reader.readline()
            tasks.append(asyncio.ensure_future(lines_reader(reader)))


def worker(port: int, websocket: bool, first: int, count: int, login: bool, pipe) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def run():
        gate = asyncio.Semaphore(CONCURRENT_CONNECTS)
        tasks, writers = [], []
        started = time.perf_counter()
        results = await asyncio.gather(*(
            idle_player(port, websocket, first + i, login, gate, tasks, writers)
            for i in range(count)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        pipe.send({"seconds": time.perf_counter() - started, "held": count - len(failed),
                   "errors": sorted({repr(e)[:80] for e in failed})[:3]})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # until told to let go
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()

    asyncio.run(run())


# -- the quiet player ------------------------------------------------------------------------

class Probe:
    """A logged-in rooms player creating and leaving a room, one request at a time."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.number = 0
        self.call("login", details={"username": "probe", "avatar": 1})

    def call(self, type_: str, **fields) -> dict:
        self.number += 1
        self.sock.sendall(json.dumps(dict({"id": self.number, "type": type_},
                                          **fields)).encode() + b"\n")
        while True:
            reply = json.loads(self.file.readline())
            if reply.get("requestId") == self.number:
                return reply

    def measure(self, count: int) -> list:
        times = []
        for index in range(count):
            started = time.perf_counter()
            self.call("room_create" if index % 2 == 0 else "room_leave")
            times.append(time.perf_counter() - started)
            time.sleep(0.005)
        return sorted(times)


def quantile(times: list, q: float) -> float:
    return times[min(len(times) - 1, int(len(times) * q))]


# -- the daemon --------------------------------------------------------------------------------

def resident_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descriptors(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def run_level(total: int, per_worker: int, probes: int, login: bool,
              transports: str = "both") -> dict:
    tmp = tempfile.mkdtemp(prefix="gamed-bench-conn-")
    lines_port, ws_port, http_port = free_port(), free_port(), free_port()
    limits = {"max_connections": str(total + 100)}
    daemon = start_daemon(tmp, {"rooms": dict(limits, websocket=listen(ws_port),
                                              listen=listen(lines_port)),
                                "http": {"listen": listen(http_port)}}, lines_port)
    try:
        probe = Probe(lines_port)
        probe.measure(probes // 4)  # warm
        quiet = probe.measure(probes)
        base_kb, base_fds = resident_kb(daemon.pid), descriptors(daemon.pid)
        workers, pipes = [], []
        on_ws = {"both": total - total // 2, "lines": 0, "websocket": total}[transports]
        for websocket, port, share in ((False, lines_port, total - on_ws),
                                       (True, ws_port, on_ws)):
            first = 0 if not websocket else total
            while share > 0:
                count = min(per_worker, share)
                ours, theirs = multiprocessing.Pipe()
                proc = multiprocessing.Process(target=worker, args=(
                    port, websocket, first, count, login, theirs), daemon=True)
                proc.start()
                workers.append(proc)
                pipes.append(ours)
                first += count
                share -= count
        started = time.perf_counter()
        reports = [pipe.recv() for pipe in pipes]
        accept_seconds = time.perf_counter() - started
        time.sleep(2.0)  # let the daemon settle (its last writes, the allocator)
        held = sum(r["held"] for r in reports)
        held_kb, held_fds = resident_kb(daemon.pid), descriptors(daemon.pid)
        loaded = probe.measure(probes)
        for pipe in pipes:
            pipe.send("close")
        for proc in workers:
            proc.join(30)
        alive = daemon.poll() is None
    finally:
        daemon.terminate()
        daemon.wait(30)
    return {"asked": total, "held": held, "errors": [e for r in reports for e in r["errors"]],
            "accept_s": accept_seconds, "base_mb": base_kb / 1024, "held_mb": held_kb / 1024,
            "kb_each": (held_kb - base_kb) / max(1, held), "fds": held_fds - base_fds,
            "quiet": (quantile(quiet, 0.5), quantile(quiet, 0.99)),
            "loaded": (quantile(loaded, 0.5), quantile(loaded, 0.99)), "alive": alive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="5000,10000,19500")
    parser.add_argument("--per-worker", type=int, default=5000)
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--no-login", action="store_true")
    parser.add_argument("--transports", choices=("both", "lines", "websocket"),
                        default="both", help="where the idle players connect (both: half each)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = hard - 64  # listeners, the database, logs, the probe
    print("open-files hard limit per process: %d (the daemon holds at most ~%d connections)"
          % (hard, room))
    print("%8s %8s %9s %9s %9s %9s %8s %17s %17s" % (
        "asked", "held", "accept s", "conn/s", "RSS MB", "KB each", "fds",
        "quiet p50/p99 ms", "held p50/p99 ms"))
    for level in (int(x) for x in args.levels.split(",")):
        level = min(level, room)
        r = run_level(level, args.per_worker, args.probes, not args.no_login, args.transports)
        print("%8d %8d %9.2f %9.0f %4.0f→%-4.0f %9.2f %8d %8.2f/%-8.2f %8.2f/%-8.2f%s" % (
            r["asked"], r["held"], r["accept_s"], r["held"] / r["accept_s"], r["base_mb"],
            r["held_mb"], r["kb_each"], r["fds"], r["quiet"][0] * 1000,
            r["quiet"][1] * 1000, r["loaded"][0] * 1000, r["loaded"][1] * 1000,
            "" if r["alive"] else "  DAEMON DIED"))
        if r["errors"]:
            print("    errors:", r["errors"])
        sys.stdout.flush()


if __name__ == "__main__":
    main()
