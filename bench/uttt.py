"""uttt throughput and latency against the real daemon, over WebSocket, as a ratio of a
bare autobahn reference measured in the same run.

    python bench/uttt.py [--database sqlite|postgresql|both] [--pairs 32] [--workers 1]
                         [--seconds 10] [--rounds 3] [--no-reference]
                         [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

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

The reference (`--serve`) is a bare autobahn server on the same database: it answers
`temp_session` and `match_request` at once and each `move` with one INSERT (its own
transaction, through twisted.enterprise.adbapi) followed by a match_update frame of
gamed's size to both players; it checks no rules (its board stays one mark, which the
bots read exactly as they read gamed's). The reference and gamed run alternately,
`--rounds` times, each after a wait for a quiet machine; printed are each round, the
medians, and gamed's moves/s and p99 as ratios of the reference's, and the ratio of the
servers' CPU per move over the measured window (its threads included): the figure the
host's load changes least, to judge a change to the per-message path.
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
sys.path.insert(0, os.path.join(ROOT, "bench"))
from support import free_port, launch, process_cpu_seconds  # noqa: E402



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
             "error_codes": {}, "opponent_latencies": []}

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
            # the same state twice (a login's listing and the news of the match arriving
            # together) is one update: not an acknowledgement, not a turn
            seen = (data["id"], json.dumps(state, sort_keys=True))
            if seen == getattr(self, "last_seen", None):
                return
            self.last_seen = seen
            pair = self.pair
            if (pair.moved_at is not None and pair.mover is not self and state
                    and state["last_move"] == pair.move):
                # the opponent's copy of the move (through the other node when split)
                if measure_from <= now <= stop_at:
                    stats["opponent_latencies"].append(now - pair.moved_at)
                pair.moved_at = None
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
                self.sent_at = self.pair.moved_at = time.perf_counter()
                self.pair.mover, self.pair.move = self, move.as_dict()
                self.ws.send({"type": "move", "data": {"id": data["id"], **{
                    k: str(v) for k, v in move.as_dict().items()}}})

    class Pair:
        def __init__(self):
            self.members = []
            self.joined_count = 0
            self.moved_at = None  # when the last move was sent, until the opponent saw it
            self.mover = self.move = None

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


# -- the reference: bare autobahn, one INSERT per move -----------------------------------------

REFERENCE_CELLS = [[1] + [0] * 8] + [[0] * 9 for _ in range(8)]  # one mark, at (0,0,0,0)


def serve_reference(url: str, port_file: str) -> None:
    import itertools

    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.enterprise import adbapi
    from twisted.internet import reactor

    from gamed.store.engines import create_engine

    engine = create_engine(url)
    module = "sqlite3" if engine.name == "sqlite" else "psycopg2"
    kwargs = engine.connect_kwargs()
    # the pragmas gamed sets (WAL, synchronous=NORMAL on SQLite); one writer on SQLite
    pool = adbapi.ConnectionPool(module, cp_min=1, cp_max=1 if module == "sqlite3" else 3,
                                 cp_openfun=engine.on_new_connection, **kwargs)
    create = ("CREATE TABLE IF NOT EXISTS reference_moves (match_id INTEGER, player TEXT,"
              " sub_x INTEGER, sub_y INTEGER, x INTEGER, y INTEGER)")
    insert = ("INSERT INTO reference_moves VALUES (?, ?, ?, ?, ?, ?)" if module == "sqlite3"
              else "INSERT INTO reference_moves VALUES (%s, %s, %s, %s, %s, %s)")
    players, matches, ids = {}, {}, itertools.count(1)

    def update(match_id, a, b, active):
        return json.dumps({"type": "match_update", "data": {
            "id": match_id, "revoke_time": "2026-12-02 16:00:00", "ranked": False,
            "match_state": {"complete_field": REFERENCE_CELLS,
                            "global_field": [[0] * 3 for _ in range(3)],
                            "last_move": {"sub_x": 0, "sub_y": 0, "x": 0, "y": 0},
                            "game_over": False, "is_draw": False, "player_won": None,
                            "current_player": active, "active_player": active,
                            "player_a": a, "player_b": b}}},
            separators=(",", ":")).encode("utf-8")

    class Reference(WebSocketServerProtocol):
        name = None

        def onOpen(self):
            self.transport.setTcpNoDelay(True)  # as gamed does (autobahn's option is late)

        def onMessage(self, payload, isBinary):
            message = json.loads(payload)
            kind, data = message["type"], message["data"]
            if kind == "temp_session":
                self.name = data["name"]
                players[self.name] = self
                self.sendMessage(json.dumps({"type": "login_response", "data": {
                    "success": True, "msg": "logged in", "id": secrets.token_hex(16),
                    "registered": False, "user": self.name}}).encode("utf-8"))
            elif kind == "match_request":
                match_id = str(next(ids))
                matches[match_id] = (self, players[data["player"]])
                self.send_both(match_id, self.name)
            elif kind == "move":
                match_id = data["id"]
                a, b = matches[match_id]
                other = b if self is a else a
                d = pool.runOperation(insert, (int(match_id), self.name, int(data["sub_x"]),
                                               int(data["sub_y"]), int(data["x"]),
                                               int(data["y"])))
                d.addCallback(lambda _: self.send_both(match_id, other.name))

        def send_both(self, match_id, active):
            a, b = matches[match_id]
            frame = update(match_id, a.name, b.name, active)
            for player in (a, b):
                if player.state == player.STATE_OPEN:
                    player.sendMessage(frame)

    def listening(port):
        with open(port_file + ".tmp", "w") as handle:
            handle.write(str(port.getHost().port))
        os.rename(port_file + ".tmp", port_file)

    factory = WebSocketServerFactory()
    factory.protocol = Reference
    factory.setProtocolOptions(tcpNoDelay=True, perMessageCompressionAccept=lambda o: None)
    pool.runOperation(create).addCallback(
        lambda _: listening(reactor.listenTCP(0, factory, interface="127.0.0.1")))
    reactor.run()


def start_reference(url: str) -> tuple:
    port_file = tempfile.mktemp(prefix="gamed-bench-uttt-port-")
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", url,
                             port_file])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the reference server exited")
        if os.path.exists(port_file):
            with open(port_file) as handle:
                port = int(handle.read())
            os.unlink(port_file)
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the reference server did not listen within 30 s")


# -- the daemon ----------------------------------------------------------------------------------


def start_daemon(url: str, tmp: str, port: int) -> subprocess.Popen:
    config = os.path.join(tmp, "gamed.toml")
    with open(config, "w") as fh:
        fh.write(
            '[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
            '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
            '[uttt]\nwebsocket = "tcp:%d:interface=127.0.0.1"\nlisten = ""\n'
            'rate = 100000.0\nburst = 100000\n'
            '[rooms]\nwebsocket = ""\nlisten = ""\n[http]\nlisten = ""\n' % (url, port))
    return launch(tmp, config, port)


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


def database(kind: str, args, tmp: str):
    """(url, drop) for a fresh database of `kind`."""
    if kind == "sqlite":
        return "sqlite:///" + os.path.join(tmp, "bench.sqlite3"), lambda: None
    import psycopg2

    from gamed.store.engines import create_engine

    dbname = "gamed_bench_%s" % secrets.token_hex(4)
    admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + dbname)

    def drop():
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            cur.execute("DROP DATABASE IF EXISTS " + dbname)
        admin.close()

    return args.postgres.rsplit("/", 1)[0] + "/" + dbname, drop


def run(kind: str, args, target: str = "gamed") -> dict:
    """One measurement of `target` ("gamed" or "reference") on a fresh database."""
    tmp = tempfile.mkdtemp(prefix="gamed-bench-uttt-")
    url, drop = database(kind, args, tmp)
    if target == "gamed":
        port = free_port()
        proc = start_daemon(url, tmp, port)
    else:
        proc, port = start_reference(url)
    try:
        queue = multiprocessing.get_context("fork").Queue()
        per_worker = [args.pairs // args.workers + (i < args.pairs % args.workers)
                      for i in range(args.workers)]
        procs = [multiprocessing.get_context("fork").Process(
            target=worker, args=(port, n, args.seconds, args.warmup, 1000 + i, queue))
            for i, n in enumerate(per_worker) if n]
        for p in procs:
            p.start()
        # the server's CPU over the measured window (the workers' own, after their warm-up)
        time.sleep(args.warmup)
        cpu_start = process_cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        cpu_spent = process_cpu_seconds(proc.pid) - cpu_start
        results = [queue.get(timeout=args.seconds + args.warmup + 60) for _ in procs]
        for p in procs:
            p.join(10)
    finally:
        stop_daemon(proc)
    latencies = [lat for r in results for lat in r["latencies"]]
    acked = sum(r["acked_total"] for r in results)
    report = {
        "target": target,
        "database": kind,
        "moves_per_second": round(sum(r["moves"] for r in results) / args.seconds, 1),
        "latency_ms_p50": round(1000 * percentile(latencies, 50), 2),
        "latency_ms_p99": round(1000 * percentile(latencies, 99), 2),
        "latency_ms_max": round(1000 * max(latencies), 2) if latencies else None,
        "client_errors": sum(r["errors"] for r in results),
        # load-insensitive: the server's CPU per move measured (its threads included)
        "server_cpu_us_per_move": round(1e6 * cpu_spent / max(1, sum(r["moves"] for r in results)), 1),
    }
    if target == "gamed":
        stored = count_moves(url)
        report.update(games_finished=sum(r["games"] for r in results),
                      moves_acknowledged=acked, moves_stored=stored,
                      every_move_durable=stored >= acked)
    drop()
    shutil.rmtree(tmp, ignore_errors=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true",
                        help="gamed alone (no ratio: a figure without its reference)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORTFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_reference(*args.serve)
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from support import interleaved, median

    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print("uttt: %d pairs, %g s per run, %d rounds, %s (%d CPUs)"
          % (args.pairs, args.seconds, args.rounds, time.strftime("%Y-%m-%d %H:%M UTC",
                                                                   time.gmtime()),
             os.cpu_count()), flush=True)
    ok = True
    for kind in kinds:
        contenders = [("gamed", lambda: run(kind, args))]
        if not args.no_reference:
            contenders.insert(0, ("reference", lambda: run(kind, args, "reference")))
        results = interleaved(args.rounds, contenders, report=lambda line: print(line,
                                                                                  flush=True))
        summary = {"database": kind}
        for label, runs in results.items():
            summary[label] = {key: median([r[key] for r in runs]) for key in
                              ("moves_per_second", "latency_ms_p50", "latency_ms_p99",
                               "server_cpu_us_per_move")}
            summary[label]["client_errors"] = sum(r["client_errors"] for r in runs)
        durable = all(r["every_move_durable"] for r in results["gamed"])
        summary["gamed"]["every_move_durable"] = durable
        ok = ok and durable
        if "reference" in results:
            ref, ours = summary["reference"], summary["gamed"]
            summary["ratio_moves_per_second"] = round(
                ours["moves_per_second"] / ref["moves_per_second"], 3)
            summary["ratio_latency_p99"] = round(
                ours["latency_ms_p99"] / ref["latency_ms_p99"], 3)
            # each round's ratio too: the two ran minutes apart at most
            summary["round_ratios_moves_per_second"] = [
                round(g["moves_per_second"] / r["moves_per_second"], 3)
                for g, r in zip(results["gamed"], results["reference"])]
            summary["ratio_server_cpu_per_move"] = round(
                ours["server_cpu_us_per_move"] / ref["server_cpu_us_per_move"], 3)
            print("%s medians: gamed %.0f moves/s p99 %.1f ms; reference %.0f moves/s p99 "
                  "%.1f ms; gamed/reference: moves/s %.2f (goal >= 0.50), p99 %.2f (goal <= 2), "
                  "server CPU per move %.2f (%.0f / %.0f us)"
                  % (kind, ours["moves_per_second"], ours["latency_ms_p99"],
                     ref["moves_per_second"], ref["latency_ms_p99"],
                     summary["ratio_moves_per_second"], summary["ratio_latency_p99"],
                     summary["ratio_server_cpu_per_move"], ours["server_cpu_us_per_move"],
                     ref["server_cpu_us_per_move"]))
        print(json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
