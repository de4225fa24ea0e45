"""Web pages under load: pages/s and latency of `/` and a player page, with 10k players
and 100k matches in the database, while the uttt benchmark's load plays at the same time.

    python bench/web.py [--players 10000] [--matches 100000] [--rate 300] [--seconds 15]
                        [--pairs 32] [--connections 16] [--database sqlite|postgresql]

Fills a fresh database (SQLite file, or a PostgreSQL database made for the run) with
`--players` registered players and `--matches` finished matches of the four games (ratings,
rating changes and all), starts `twistd -n gamed` with the uttt WebSocket and HTTP
listeners, then measures, in `--rounds` interleaved rounds (each after a wait for a quiet
machine; medians reported):

1. uttt alone: bench/uttt.py's clients (`--pairs` pairs playing random games as fast as
   updates come back) -> moves/s and the p99 move-to-update latency (the reference);
2. uttt and pages together: the same uttt load, and an HTTP client asking for `/` and a
   random player's page alternately, `--rate` pages a second on schedule (open loop over
   `--connections` keep-alive connections; a request's latency counts from when it was due,
   so a slow server cannot hide its queue), or as fast as it answers with `--rate 0`.

Reported (one JSON line): pages/s, p50/p99 of each page, errors, uttt moves/s and p99
alone and under page load, and their ratio. Goals: >= 300 pages/s with p99 < 50 ms, and
the uttt p99 under page load at most 1.2x the reference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import random
import secrets
import selectors
import shutil
import socket
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import uttt as uttt_bench  # noqa: E402  (bench/uttt.py: its clients and percentile)
from support import free_port, interleaved, listen, median, start_daemon  # noqa: E402

GAMES = ("novaglide", "blockattack", "uttt", "rooms")
GAME_WEIGHTS = (3, 2, 4, 1)


# -- the database ------------------------------------------------------------------------------

def fill(url: str, players: int, matches: int, seed: int = 7) -> list:
    """Migrate and fill the database; returns the players' names."""
    from gamed.store.database import run_blocking
    from gamed.store.engines import create_engine
    from gamed.store.migrations import migrate

    engine = create_engine(url)
    run_blocking(engine, migrate)
    rng = random.Random(seed)
    names = ["player%05d" % i for i in range(1, players + 1)]
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    def insert(cur):
        cur.executemany(
            "INSERT INTO accounts (id, name, name_key, password_hash, is_guest, banned,"
            " created_at) VALUES (?, ?, ?, NULL, 0, 0, ?)",
            [(i + 1, name, name, start.isoformat()) for i, name in enumerate(names)])
        ratings = {}  # (account, game) -> [rating, wins, losses, draws]
        match_rows, player_rows = [], []
        for match_id in range(1, matches + 1):
            game = rng.choices(GAMES, GAME_WEIGHTS)[0]
            a, b = rng.sample(range(1, players + 1), 2)
            ended = (start + datetime.timedelta(seconds=30 * match_id)).isoformat()
            match_rows.append((match_id, game, ended, ended, "won", 1, "{}"))
            for seat, (account, outcome) in enumerate(((a, "win"), (b, "loss"))):
                entry = ratings.setdefault((account, game), [1000.0, 0, 0, 0])
                before = entry[0]
                entry[0] += 10.0 if outcome == "win" else -10.0
                entry[1 if outcome == "win" else 2] += 1
                player_rows.append((match_id, account, seat, outcome,
                                    1.0 if outcome == "win" else 0.0, before, entry[0], "{}"))
        cur.executemany(
            "INSERT INTO matches (id, game, started_at, ended_at, reason, ranked, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", match_rows)
        cur.executemany(
            "INSERT INTO match_players (match_id, account_id, seat, outcome, score,"
            " rating_before, rating_after, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            player_rows)
        cur.executemany(
            "INSERT INTO ratings (account_id, game, rating, wins, losses, draws)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(account, game, *values) for (account, game), values in ratings.items()])
        if cur.engine.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("accounts", "matches"):
                cur.execute("SELECT setval(pg_get_serial_sequence('%s', 'id'),"
                            " (SELECT MAX(id) FROM %s))" % (table, table))

    run_blocking(engine, insert)
    if engine.name == "postgresql":
        run_blocking(engine, lambda cur: cur.execute("ANALYZE"))
    return names


# -- the HTTP client -----------------------------------------------------------------------------

class HttpConnection:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = b""
        self.busy = None  # (kind, due time) of the request in flight
        self.closed = False

    def request(self, path: str) -> None:
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode("ascii"))

    def response(self):
        """(status, body size) once a whole response is in, else None."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return None
        if not data:
            raise ConnectionError("closed by the server")
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buffer[:head_end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(self.buffer) < head_end + 4 + length:
            return None
        status = int(head.split(" ", 2)[1])
        self.buffer = self.buffer[head_end + 4 + length:]
        return status, length


def page_load(port: int, names: list, rate: float, connections: int, seconds: float,
              warmup: float, seed: int, out) -> None:
    rng = random.Random(seed)
    conns = [HttpConnection(port) for _ in range(connections)]
    selector = selectors.DefaultSelector()
    for conn in conns:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    latencies = {"home": [], "player": []}
    stats = {"errors": 0, "done": 0, "bytes": 0, "refused": 0, "unanswered": 0}
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + seconds
    interval = 1.0 / rate if rate > 0 else 0.0
    next_due = started
    queue = []  # due times of requests waiting for a free connection
    lost = []  # (kind, due) of requests whose connection closed before the answer
    turn = 0

    def path_of(kind):
        return "/" if kind == "home" else "/players/" + rng.choice(names)

    while True:
        now = time.perf_counter()
        if now >= stop_at + 2.0:
            break
        if now < stop_at:
            if rate > 0:
                while next_due <= now:
                    queue.append(next_due)
                    next_due += interval
            else:  # closed loop: every free connection asks at once
                queue.extend(now for conn in conns if conn.busy is None
                             if len(queue) < connections)
        for conn in conns:
            if conn.busy is None and queue and not conn.closed:
                kind = ("home", "player")[turn % 2]
                turn += 1
                conn.busy = (kind, queue.pop(0))
                conn.request(path_of(kind))
        if now >= stop_at and all(conn.busy is None for conn in conns):
            break
        if all(conn.closed for conn in conns):
            break
        timeout = max(0.0, min(next_due - time.perf_counter(), 0.05)) if rate > 0 else 0.05
        for key, _ in selector.select(timeout):
            conn = key.data
            try:
                done = conn.response()
            except ConnectionError:
                stats["errors"] += 1
                selector.unregister(conn.sock)
                conn.closed = True
                if conn.busy is not None:
                    lost.append(conn.busy)
                conn.busy = None
                continue
            if done is None or conn.busy is None:
                continue
            kind, due = conn.busy
            conn.busy = None
            finished = time.perf_counter()
            if done[0] not in (200, 503):
                stats["errors"] += 1
            if measure_from <= due < stop_at:
                latencies[kind].append(finished - due)
                stats["done"] += 1
                if done[0] == 503:
                    stats["refused"] += 1  # the daemon's page gate: come back later
                else:
                    stats["bytes"] += done[1]
    # requests due in the window but never answered (still queued for a connection, in
    # flight, or on a connection that closed) count with the time they had waited by the
    # end: leaving them out would hide exactly the slowest ones
    ended = time.perf_counter()
    unanswered = [(("home", "player")[i % 2], due) for i, due in enumerate(queue)]
    unanswered += [conn.busy for conn in conns if conn.busy is not None] + lost
    for kind, due in unanswered:
        if measure_from <= due < stop_at:
            latencies[kind].append(ended - due)
            stats["unanswered"] += 1
    for conn in conns:
        conn.sock.close()
    stats["latencies"] = latencies
    stats["backlog"] = len(queue)
    out.put(stats)


# -- the run ---------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (the daemon) has used so far."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uttt_phase(ctx, ws_port: int, args, with_pages: bool, names, http_port: int,
               pid: int) -> dict:
    queue = ctx.Queue()
    procs = [ctx.Process(target=uttt_bench.worker, args=(
        ws_port, args.pairs, args.seconds, args.warmup, 1000, queue))] if args.pairs else []
    if with_pages:
        procs.append(ctx.Process(target=page_load, args=(
            http_port, names, args.rate, args.connections, args.seconds, args.warmup, 5,
            queue)))
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=args.seconds + args.warmup + 120) for _ in procs]
    cpu_rate = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - started)
    for proc in procs:
        proc.join(10)
    uttt = next((r for r in results if "acked_total" in r), None)
    pages = next((r for r in results if "latencies" in r and "done" in r), None)
    # the daemon's CPU seconds a second over the phase (warm-up included); with
    # --pairs 0, per page: less sensitive to a busy host than the latencies
    report = {"daemon_cpu_per_s": round(cpu_rate, 3)}
    if pages is not None and not args.pairs:
        report["daemon_cpu_ms_per_page"] = round(
            1000 * cpu_rate / max(1e-9, pages["done"] / args.seconds), 3)
    if uttt is not None:
        report.update({"uttt_moves_per_second": round(uttt["moves"] / args.seconds, 1),
                  "uttt_p99_ms": round(1000 * uttt_bench.percentile(uttt["latencies"], 99), 2),
                  "uttt_errors": uttt["errors"]})
    if pages is not None:
        both = pages["latencies"]["home"] + pages["latencies"]["player"]
        report.update({
            "pages_per_second": round((pages["done"] - pages["refused"]) / args.seconds, 1),
            "page_p50_ms": round(1000 * uttt_bench.percentile(both, 50), 2),
            "page_p99_ms": round(1000 * uttt_bench.percentile(both, 99), 2),
            "home_p99_ms": round(1000 * uttt_bench.percentile(pages["latencies"]["home"], 99), 2),
            "player_p99_ms": round(
                1000 * uttt_bench.percentile(pages["latencies"]["player"], 99), 2),
            "page_errors": pages["errors"], "pages_refused_503": pages["refused"],
            "pages_unanswered": pages["unanswered"],
            "requests_left_waiting": pages["backlog"],
            "average_page_kib": round(
                pages["bytes"] / max(1, pages["done"] - pages["refused"]) / 1024, 1)})
    return report


def measured(ctx, ws_port: int, args, names, http_port: int, pid: int) -> dict:
    """One round of pages (and uttt when --pairs), with the reactor's lateness meanwhile."""
    before = reactor_lag(http_port)
    result = uttt_phase(ctx, ws_port, args, True, names, http_port, pid)
    after = reactor_lag(http_port)
    result["reactor_late_over_100ms"] = after[0] - before[0]
    result["reactor_late_over_500ms"] = after[1] - before[1]
    return result


def reactor_lag(http_port: int) -> tuple:
    """From /metrics: how many 50 ms timer samples ran more than 0.1 s and 0.5 s late
    (the daemon's reactor held up, by its own work or by the machine)."""
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=10) as r:
        text = r.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("gamed_reactor_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0)
    return (total - buckets.get("0.1", total), total - buckets.get("0.5", total))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=10000)
    parser.add_argument("--matches", type=int, default=100000)
    parser.add_argument("--rate", type=float, default=300.0,
                        help="pages a second on schedule; 0: as fast as answered")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=32, help="uttt pairs; 0: pages alone")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each measure, interleaved; medians reported")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gamed-bench-web-")
    admin = dbname = None
    if args.database == "sqlite":
        url = "sqlite:///%s/bench.sqlite3" % tmp
    else:
        import psycopg2

        from gamed.store.engines import create_engine

        dbname = "gamed_bench_%s" % secrets.token_hex(4)
        admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE " + dbname)
        url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
    load_before = os.getloadavg()[0]  # other work on the host (this run's own comes after)
    began = time.perf_counter()
    names = fill(url, args.players, args.matches)
    filled = time.perf_counter() - began
    ws_port, http_port = free_port(), free_port()
    proc = start_daemon(tmp, {
        "database": {"url": json.dumps(url)},
        "uttt": {"websocket": listen(ws_port), "rate": "100000.0", "burst": "100000"},
        "http": {"listen": listen(http_port)}}, http_port)
    ctx = multiprocessing.get_context("fork")
    try:
        contenders = [("pages and uttt", lambda: measured(ctx, ws_port, args, names,
                                                          http_port, proc.pid))]
        if args.pairs:
            contenders.insert(0, ("uttt alone", lambda: uttt_phase(
                ctx, ws_port, args, False, names, http_port, proc.pid)))
        rounds = interleaved(args.rounds, contenders, report=lambda text: print(
            text, file=sys.stderr))
    finally:
        uttt_bench.stop_daemon(proc)
        if admin is not None:
            with admin.cursor() as cur:
                cur.execute("DROP DATABASE IF EXISTS " + dbname)
            admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"database": args.database, "players": args.players, "matches": args.matches,
              "fill_seconds": round(filled, 1), "rate": args.rate, "pairs": args.pairs,
              "rounds": args.rounds, "load_average_before": load_before,
              "load_average_after": os.getloadavg()[0]}
    loaded = rounds["pages and uttt"]
    for key in loaded[0]:
        report[key] = round(median([r[key] for r in loaded]), 2)
    if args.pairs:
        alone = rounds["uttt alone"]
        for key in alone[0]:
            report["alone_" + key] = round(median([r[key] for r in alone]), 2)
        report["uttt_p99_ratio"] = median([
            r["uttt_p99_ms"] / a["uttt_p99_ms"] for r, a in zip(loaded, alone)
            if a["uttt_p99_ms"]])
        report["uttt_p99_ratio"] = round(report["uttt_p99_ratio"], 2)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
