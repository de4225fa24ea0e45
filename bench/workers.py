"""Every core: one gamed with `[server] workers = 2` against `workers = 1`, same run.

    python bench/workers.py [--rounds 3] [--seconds 8] [--setups w1,w2]
                            [--pairs 32] [--rooms 16] [--room-players 8] [--games 32]
                            [--matches 40,60,80,100,120,140]
                            [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                            [--redis redis://127.0.0.1:6379/0]

Each set-up is the real daemon (`twistd gamed`, every game on, a fresh PostgreSQL
database created and dropped here): `w1` is one process as before (no Redis), `w2` a
supervisor and two workers (a cluster on Redis). Against each, one after the other:

  uttt         --pairs pairs of WebSocket clients (bench/uttt.py, two client processes)
               playing random legal moves, every move durable: moves/s, p50/p99
  relay        --rooms rooms of --room-players players on TCP JSON lines, every player
               sending 40-byte frames (bench/rooms.py): delivered frames/s
  blockattack  --games games, both players sending game_flux with a window of 4
               (bench/blockattack.py): round trips/s
  novaglide    N matches at 60 Hz for each N of --matches, inputs every frame
               (bench/novaglide.py): the largest N with < 1% late ticks (summed over
               the workers) is "matches held"

and for each the server's CPU seconds (supervisor and workers, from /proc) per unit of
work. Players land on whichever worker accepts them (or, for UDP, the kernel's hash of
their source): with two workers about half of every pair crosses workers through Redis.
The set-ups alternate `--rounds` times (order reversed every other round), each after a
wait for a quiet machine; printed are each round's figures and then the medians and the
w2/w1 ratios. Goal (issue 18): >= 1.3x for each, CPU per unit within 20% of w1.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import blockattack as ba_bench  # noqa: E402  (bench/blockattack.py)
import novaglide as ng_bench  # noqa: E402
import rooms as rooms_bench  # noqa: E402
import uttt as uttt_bench  # noqa: E402
from support import free_port, launch, median, wait_for_quiet  # noqa: E402


# -- the server ---------------------------------------------------------------------------

def config_text(setup: str, url: str, ports: dict, args, prefix: str) -> str:
    def at(port, kind="tcp"):
        return '"%s:%d:interface=127.0.0.1"' % (kind, port)

    text = ('[server]\nworkers = %d\n[database]\nurl = "%s"\npool_size = 5\n'
            '[accounts]\nbcrypt_cost = 4\naddress_burst = 100000\nbcrypt_queue_limit = 100000\n'
            '[logging]\nlevel = "warn"\n'
            '[novaglide]\nlisten = %s\nrate = 1000.0\nburst = 2000\nrejoin_grace = 0.5\n'
            '[blockattack]\nlisten = %s\ngame_seconds = 3600.0\n'
            '[uttt]\nwebsocket = %s\nlisten = ""\nrate = 100000.0\nburst = 100000\n'
            '[rooms]\nwebsocket = ""\nlisten = %s\nrate = 10000000.0\nburst = 10000000\n'
            '[http]\nlisten = %s\n'
            % (2 if setup == "w2" else 1, url, at(ports["novaglide"]),
               at(ports["blockattack"], "udp"), at(ports["uttt"]), at(ports["rooms"]),
               at(ports["http"])))
    if setup == "w2":
        text += ('[cluster]\nredis_url = "%s"\nnode_name = "bench"\nkey_prefix = "%s"\n'
                 % (args.redis, prefix))
    return text


class Server:
    def __init__(self, setup: str, args):
        import psycopg2

        from gamed.store.engines import create_engine

        self.setup, self.args = setup, args
        self.tmp = tempfile.mkdtemp(prefix="gamed-bench-workers-")
        self.dbname = "gamed_bench_%s" % secrets.token_hex(4)
        self.admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute("CREATE DATABASE " + self.dbname)
        self.url = args.postgres.rsplit("/", 1)[0] + "/" + self.dbname
        self.prefix = "gamedbench:%s:" % secrets.token_hex(4)
        self.ports = {"novaglide": free_port(), "uttt": free_port(), "rooms": free_port(),
                      "http": free_port(), "blockattack": free_port(socket.SOCK_DGRAM)}
        path = os.path.join(self.tmp, "gamed.toml")
        with open(path, "w") as handle:
            handle.write(config_text(setup, self.url, self.ports, args, self.prefix))
        self.proc = launch(self.tmp, path, self.ports["http"])
        deadline = time.monotonic() + 60
        while not self.healthy():
            if time.monotonic() > deadline:
                raise SystemExit("%s did not become healthy; see %s/gamed.log"
                                 % (setup, self.tmp))
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.ports["http"],
                                        timeout=2) as reply:
                return json.loads(reply.read()).get("status") == "ok"
        except OSError:
            return False

    def pids(self) -> list:
        """The daemon and its workers."""
        pids = [self.proc.pid]
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as handle:
                pids += [int(pid) for pid in handle.read().split()]
        except OSError:
            pass
        return pids

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += ng_bench.cpu_seconds(pid)
            except OSError:
                pass
        return total

    def metric_sum(self, name: str) -> float:
        """A metric summed over every worker (and label)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.ports["http"],
                                    timeout=5) as reply:
            text = reply.read().decode()
        return sum(float(value) for value in
                   re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M))


# -- the workloads -------------------------------------------------------------------------

def run_uttt(server: Server, args) -> dict:
    queue = multiprocessing.get_context("fork").Queue()
    halves = [args.pairs // 2, args.pairs - args.pairs // 2]
    clients = [multiprocessing.get_context("fork").Process(
        target=uttt_bench.worker,
        args=(server.ports["uttt"], n, args.seconds, 2.0, 1000 + i, queue))
        for i, n in enumerate(halves) if n]
    cpu0 = None
    for client in clients:
        client.start()
    time.sleep(2.0)  # the warm-up: logins and the first matches
    cpu0 = server.cpu()
    results = [queue.get(timeout=args.seconds + 90) for _ in clients]
    cpu = server.cpu() - cpu0
    for client in clients:
        client.join(10)
    latencies = [lat for r in results for lat in r["latencies"]]
    moves = sum(r["moves"] for r in results)
    return {"moves_s": round(moves / args.seconds, 1),
            "p50_ms": round(1000 * uttt_bench.percentile(latencies, 50), 1),
            "p99_ms": round(1000 * uttt_bench.percentile(latencies, 99), 1),
            "cpu_ms_per_move": round(1000 * cpu / moves, 3) if moves else None,
            "errors": sum(r["errors"] for r in results)}


def run_relay(server: Server, args) -> dict:
    rooms = [rooms_bench.gamed_room(server.ports["rooms"], args.room_players, False)
             for _ in range(args.rooms)]
    frame_size = rooms_bench.gamed_frame_size(False)
    cpu0 = server.cpu()
    frames_s, seconds = relay(rooms, args.seconds, 256, frame_size)
    cpu = server.cpu() - cpu0
    for conns in rooms:
        rooms_bench.close_all(conns)
    return {"frames_s": round(frames_s), "cpu_us_per_frame":
            round(1e6 * cpu / (frames_s * seconds), 3) if frames_s else None}


def relay(rooms: list, seconds: float, window: int, frame_size: int, batch: int = 16):
    """bench/rooms.py's measure for several rooms: each sender at most `window` frames
    ahead of its room's deliveries."""
    import selectors

    selector = selectors.DefaultSelector()
    state = []
    for index, conns in enumerate(rooms):
        room = {"sent": 0, "received": 0, "fanout": len(conns) - 1,
                "payloads": [c.encode(rooms_bench.FRAME) * batch for c in conns],
                "conns": conns}
        state.append(room)
        for conn in conns:
            conn.sock.setblocking(False)
            selector.register(conn.sock, selectors.EVENT_READ, room)
    warm_end = time.perf_counter() + 1.0
    end = warm_end + seconds
    base = started = None
    while True:
        now = time.perf_counter()
        if started is None and now >= warm_end:
            started, base = now, sum(r["received"] for r in state)
        if now >= end:
            break
        for room in state:
            in_flight = room["sent"] * room["fanout"] - room["received"] // frame_size
            if in_flight < window * room["fanout"]:
                for conn, payload in zip(room["conns"], room["payloads"]):
                    try:
                        conn.sock.send(payload)
                        room["sent"] += batch
                    except BlockingIOError:
                        pass
        for key, _ in selector.select(timeout=0.001):
            try:
                while True:
                    chunk = key.fileobj.recv(262144)
                    if not chunk:
                        raise RuntimeError("the server closed a connection")
                    key.data["received"] += len(chunk)
            except BlockingIOError:
                pass
    elapsed = time.perf_counter() - started
    selector.close()
    delivered = (sum(r["received"] for r in state) - base) / frame_size
    return delivered / elapsed, elapsed


def run_blockattack(server: Server, args) -> dict:
    address = ("127.0.0.1", server.ports["blockattack"])
    players = []
    for game in range(args.games):
        players += [ba_bench.Player(address, "g%d" % game, 0),
                    ba_bench.Player(address, "g%d" % game, 1)]
    ba_bench.pair_in_gamed(players)
    cpu0 = server.cpu()
    started = time.perf_counter()
    rate = ba_bench.measure(players, args.seconds, 4)
    cpu = server.cpu() - cpu0
    elapsed = time.perf_counter() - started
    return {"round_trips_s": round(rate), "cpu_us_per_round_trip":
            round(1e6 * cpu / (rate * elapsed), 2) if rate else None}


def run_novaglide(server: Server, args, run_base: int) -> dict:
    held, rows = 0, []
    for run, matches in enumerate(int(n) for n in args.matches.split(",")):
        bots = ng_bench.set_up(server.ports["novaglide"], matches, run_base + run)
        time.sleep(1.2)  # every worker's metrics written since the matches began
        ng_bench.drain(bots)
        for bot in bots:
            bot.states = 0
        ticks0 = server.metric_sum("gamed_novaglide_ticks_total")
        late0 = server.metric_sum("gamed_novaglide_late_ticks_total")
        cpu0, wall0 = server.cpu(), time.perf_counter()
        ng_bench.drive(bots, args.seconds, 60.0)
        wall = time.perf_counter() - wall0
        cpu = server.cpu() - cpu0
        states = sum(bot.states for bot in bots)
        for bot in bots:
            bot.sock.close()
        time.sleep(1.2)
        ticks = server.metric_sum("gamed_novaglide_ticks_total") - ticks0
        late = server.metric_sum("gamed_novaglide_late_ticks_total") - late0
        share = late / ticks if ticks else 1.0
        rows.append({"matches": matches, "late": round(share, 4),
                     "states_s": round(states / wall),
                     "cpu_us_per_state": round(1e6 * cpu / states, 2) if states else None})
        time.sleep(1.0)  # the matches end (rejoin grace)
        if share >= 0.01:
            break
        held = matches
    # the CPU per state at the largest N held (at the first N when none was)
    at = [row for row in rows if row["matches"] == held] or rows[:1]
    return {"matches_held": held, "steps": rows, "cpu_us_per_state": at[0]["cpu_us_per_state"]}


def clean_redis(url: str, prefix: str) -> None:
    from gamed.cluster.settings import parse_redis_url
    from tests.cluster.redisutil import BlockingRedis

    parsed = parse_redis_url(url)
    client = BlockingRedis(parsed.host, parsed.port, parsed.db)
    client.delete_prefix(prefix)
    client.close()


def measure(setup: str, args, round_: int) -> dict:
    server = Server(setup, args)
    try:
        report = {"setup": setup, "round": round_ + 1}
        for name in args.workloads.split(","):
            if name == "uttt":
                report["uttt"] = run_uttt(server, args)
            elif name == "relay":
                report["relay"] = run_relay(server, args)
            elif name == "blockattack":
                report["blockattack"] = run_blockattack(server, args)
            elif name == "novaglide":
                report["novaglide"] = run_novaglide(server, args, 100 * round_)
            wait_for_quiet(max_wait=10)
        return report
    finally:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(60)
        except Exception:
            server.proc.kill()
            server.proc.wait()
        with server.admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (server.dbname,))
            cur.execute("DROP DATABASE IF EXISTS " + server.dbname)
        server.admin.close()
        if setup == "w2":
            clean_redis(args.redis, server.prefix)
        shutil.rmtree(server.tmp, ignore_errors=True)


#: (workload, figure, better when higher, CPU figure)
FIGURES = [("uttt", "moves_s", True, "cpu_ms_per_move"), ("uttt", "p99_ms", False, None),
           ("relay", "frames_s", True, "cpu_us_per_frame"),
           ("blockattack", "round_trips_s", True, "cpu_us_per_round_trip"),
           ("novaglide", "matches_held", True, "cpu_us_per_state")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--setups", default="w1,w2")
    parser.add_argument("--workloads", default="uttt,relay,blockattack,novaglide")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--rooms", type=int, default=16)
    parser.add_argument("--room-players", type=int, default=8)
    parser.add_argument("--games", type=int, default=32)
    parser.add_argument("--matches", default="40,60,80,100,120,140,160")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    setups = args.setups.split(",")
    print("workers: %s, %d rounds, %g s per measure, %d cores, %s" % (
        " vs ".join(setups), args.rounds, args.seconds, os.cpu_count(),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), flush=True)
    reports = {setup: [] for setup in setups}
    for round_ in range(args.rounds):
        for setup in (setups if round_ % 2 == 0 else setups[::-1]):
            busy = wait_for_quiet()
            report = measure(setup, args, round_)
            report["cpu_busy_before"] = round(busy, 2)
            reports[setup].append(report)
            print(json.dumps(report), flush=True)
    summary = {}
    for workload, figure, _, cpu_figure in FIGURES:
        for setup in setups:
            values = [r[workload][figure] for r in reports[setup] if workload in r]
            if values:
                summary.setdefault("%s.%s" % (workload, figure), {})[setup] = median(values)
            if cpu_figure:
                cpu = [r[workload][cpu_figure] for r in reports[setup] if workload in r]
                if cpu:
                    summary.setdefault("%s.%s" % (workload, cpu_figure), {})[setup] = \
                        median(cpu)
    print("medians: " + json.dumps(summary))
    if {"w1", "w2"} <= set(setups):
        for key, values in summary.items():
            if values.get("w1"):
                print("%-36s w1 %10.3f  w2 %10.3f  w2/w1 %.2f" % (
                    key, values["w1"], values["w2"], values["w2"] / values["w1"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
