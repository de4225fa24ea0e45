"""uttt throughput and latency against the real daemon, over WebSocket.

    python bench/uttt.py [--database sqlite|postgresql|both] [--pairs 32] [--workers 1]
                         [--seconds 15] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Starts `twistd -n gamed` with only the uttt WebSocket listener (a fresh SQLite file, or a
fresh PostgreSQL database created for the run and dropped after it), then runs `--pairs`
pairs of WebSocket clients spread over `--workers` client processes. Each pair logs in
with temporary sessions, starts a match by invite and plays random legal moves as fast
as the updates come back; a finished game is followed by a new one.

Reported: moves/s (moves whose match_update came back to the mover, over the measured
window) and the p50/p99/max move-to-update latency (from sending `move` to receiving the
mover's own `match_update` for it). "Every move durable": after the daemon has stopped,
the number of rows in `uttt_moves` must be at least the number of moves acknowledged to
clients (an update is only sent after its move is committed).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import random
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


# -- the client side: a minimal WebSocket client on non-blocking sockets ---------------------
#
# The clients must cost less CPU than the server they measure, so they do not use autobahn:
# frames to the server are masked with an all-zero key (valid, and free), frames from the
# server are small unmasked text frames, and one selector loop drives every connection of
# a worker process.

class RawWebSocket:
    def __init__(self, port: int):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        sock.sendall(("GET /bench HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode("ascii"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            reply += chunk
        head, self.buffer = reply.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("handshake refused: %r" % head[:100])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock

    def send(self, message: dict) -> None:
        payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, 0x80 | size)
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        self.sock.sendall(header + b"\0\0\0\0" + payload)

    def received(self) -> list:
        """Read what is available; the complete text frames, decoded."""
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return []
        if not data:
            raise ConnectionError("closed by the server")
        buffer = self.buffer + data
        frames = []
        while len(buffer) >= 2:
            opcode, size = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, offset = struct.unpack("!H", buffer[2:4])[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, offset = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < offset + size:
                break
            if opcode == 1:
                frames.append(json.loads(buffer[offset:offset + size]))
            elif opcode == 8:
                raise ConnectionError("close frame from the server")
            buffer = buffer[offset + size:]
        self.buffer = buffer
        return frames


def worker(port, pairs: int, seconds: float, warmup: float, seed: int, out) -> None:
    """port: one port for both players of a pair, or (port of a, port of b) to split each
    pair across two nodes (bench/cluster.py)."""
    from gamed.uttt import rules

    ports = port if isinstance(port, tuple) else (port, port)

    rng = random.Random(seed)
    stats = {"moves": 0, "latencies": [], "games": 0, "errors": 0, "acked_total": 0,
             "error_codes": {}}

    class Player:
        def __init__(self, pair):
            self.ws = RawWebSocket(ports[len(pair.members)])
            self.pair = pair
            self.name = "b%s" % secrets.token_hex(6)
            self.sent_at = None

        def on_message(self, message, now):
            kind, data = message["type"], message["data"]
            if kind == "login_response":
                if not data["success"]:
                    stats["errors"] += 1
                    return
                self.pair.joined(self)
            elif kind == "match_update":
                self.on_update(data, now)
            elif kind in ("move_response", "error", "match_request_response"):
                if not data.get("success"):
                    stats["errors"] += 1
                    code = "%s:%s" % (kind, data.get("error"))
                    stats["error_codes"][code] = stats["error_codes"].get(code, 0) + 1

        def on_update(self, data, now):
            state = data["match_state"]
            if self.sent_at is not None and state and state["last_move"] is not None:
                stats["acked_total"] += 1
                if measure_from <= now <= stop_at:
                    stats["moves"] += 1
                    stats["latencies"].append(now - self.sent_at)
                self.sent_at = None
            if state is None:
                return
            if state["game_over"]:
                if self is self.pair.members[0]:
                    stats["games"] += 1
                    if now < stop_at:
                        self.pair.start()
                return
            if state["active_player"] == self.name and now < stop_at:
                cells = [v for row in state["complete_field"] for v in row]
                last = state["last_move"]
                board = rules.board_from_cells(cells, rules.Move(
                    last["sub_x"], last["sub_y"], last["x"], last["y"]) if last else None)
                move = rng.choice(list(rules.legal_moves(board)))
                self.sent_at = time.perf_counter()
                self.ws.send({"type": "move", "data": {"id": data["id"], **{
                    k: str(v) for k, v in move.as_dict().items()}}})

    class Pair:
        def __init__(self):
            self.members = []
            self.joined_count = 0

        def joined(self, player):
            self.joined_count += 1
            if self.joined_count == 2:
                self.start()

        def start(self):
            a, b = self.members
            a.ws.send({"type": "match_request", "data": {"player": b.name}})

    selector = selectors.DefaultSelector()
    everyone = []
    for _ in range(pairs):
        pair = Pair()
        for _ in range(2):
            player = Player(pair)
            pair.members.append(player)
            everyone.append(player)
            selector.register(player.ws.sock, selectors.EVENT_READ, player)
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    for player in everyone:
        player.ws.send({"type": "temp_session", "data": {"name": player.name}})
    while time.perf_counter() < stop_at + 0.5:
        for key, _ in selector.select(0.1):
            player = key.data
            try:
                frames = player.ws.received()
            except ConnectionError:
                stats["errors"] += 1
                selector.unregister(player.ws.sock)
                continue
            now = time.perf_counter()
            for message in frames:
                player.on_message(message, now)
    for player in everyone:
        player.ws.sock.close()
    out.put(stats)


# -- the daemon ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daemon(url: str, tmp: str, port: int) -> subprocess.Popen:
    config = os.path.join(tmp, "gamed.toml")
    with open(config, "w") as fh:
        fh.write(
            '[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
            '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
            '[uttt]\nwebsocket = "tcp:%d:interface=127.0.0.1"\nlisten = ""\n'
            'rate = 100000.0\nburst = 100000\n'
            '[rooms]\nwebsocket = ""\nlisten = ""\n[http]\nlisten = ""\n' % (url, port))
    log = open(os.path.join(tmp, "gamed.log"), "w")
    extra = os.environ.get("BENCH_TWISTD_ARGS", "").split()  # e.g. --profile=F --savestats
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", *extra, "gamed", "--config", config],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the daemon exited; see %s" % log.name)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the daemon did not listen within 30 s")


def stop_daemon(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def count_moves(url: str) -> int:
    from gamed.store.database import run_blocking
    from gamed.store.engines import create_engine

    return run_blocking(create_engine(url), lambda cur: cur.scalar(
        "SELECT COUNT(*) FROM uttt_moves"))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def run(kind: str, args) -> dict:
    tmp = tempfile.mkdtemp(prefix="gamed-bench-uttt-")
    admin = None
    if kind == "sqlite":
        url = "sqlite:///" + os.path.join(tmp, "bench.sqlite3")
    else:
        import psycopg2

        from gamed.store.engines import create_engine

        dbname = "gamed_bench_%s" % secrets.token_hex(4)
        admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE " + dbname)
        url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
    port = free_port()
    proc = start_daemon(url, tmp, port)
    try:
        queue = multiprocessing.get_context("fork").Queue()
        per_worker = [args.pairs // args.workers + (i < args.pairs % args.workers)
                      for i in range(args.workers)]
        procs = [multiprocessing.get_context("fork").Process(
            target=worker, args=(port, n, args.seconds, args.warmup, 1000 + i, queue))
            for i, n in enumerate(per_worker) if n]
        for p in procs:
            p.start()
        results = [queue.get(timeout=args.seconds + args.warmup + 60) for _ in procs]
        for p in procs:
            p.join(10)
    finally:
        stop_daemon(proc)
    stored = count_moves(url)
    if admin is not None:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS " + dbname)
        admin.close()
    latencies = [lat for r in results for lat in r["latencies"]]
    acked = sum(r["acked_total"] for r in results)
    report = {
        "database": kind,
        "pairs": args.pairs,
        "workers": len(results),
        "moves_per_second": round(sum(r["moves"] for r in results) / args.seconds, 1),
        "latency_ms_p50": round(1000 * percentile(latencies, 50), 2),
        "latency_ms_p99": round(1000 * percentile(latencies, 99), 2),
        "latency_ms_max": round(1000 * max(latencies), 2) if latencies else None,
        "games_finished": sum(r["games"] for r in results),
        "client_errors": sum(r["errors"] for r in results),
        "moves_acknowledged": acked,
        "moves_stored": stored,
        "every_move_durable": stored >= acked,
    }
    shutil.rmtree(tmp, ignore_errors=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        report = run(kind, args)
        print(json.dumps(report))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
