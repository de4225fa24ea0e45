"""The cost of the cluster path: uttt on one node and on two nodes, same run.

    python bench/cluster.py [--pairs 32] [--seconds 15] [--rounds 3]
                            [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                            [--redis redis://127.0.0.1:6379/0]

Three set-ups, each on a fresh PostgreSQL database (created and dropped here), with the
uttt workload of bench/uttt.py (pairs of WebSocket clients playing random legal moves as
fast as their updates come back, every move durable):

  single       one node, no Redis (the reference)
  same-node    two clustered nodes, each pair on one node (the cluster's overhead alone)
  cross-node   two clustered nodes, the two players of every pair on different nodes:
               each match_update reaches the other player through Redis

Reported per set-up: moves/s, p50/p99 move-to-update latency (the mover's own update:
for cross-node moves the mover and its opponent are on different nodes), p50/p99 from the
move to the opponent's update (`opponent_ms_*`: for cross-node, the path through Redis
to the other node), the ratio to
`single` of the same run, and the CPU the nodes (and Redis) spent per acknowledged move
(from /proc and Redis's INFO: far less sensitive to the machine's load than moves/s, the
figure to judge a change of the cluster path by). The goal on the 2-core machine: cross-node >= 50 % of
single with p99 < 50 ms (the machine runs both nodes, Redis, PostgreSQL and the clients).
The set-ups alternate `--rounds` times (the order reversed every other round), each after
a wait for a quiet machine; each round's ratios, then the medians, are printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import uttt as workload  # noqa: E402  (bench/uttt.py)
from support import free_port, launch  # noqa: E402


def node_config(url: str, port: int, redis: str, prefix: str, name: str) -> str:
    cluster = ('[cluster]\nredis_url = "%s"\nnode_name = "%s"\nkey_prefix = "%s"\n'
               % (redis, name, prefix)) if redis else ""
    return ('[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
            '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
            '[uttt]\nwebsocket = "tcp:%d:interface=127.0.0.1"\nlisten = ""\n'
            'rate = 100000.0\nburst = 100000\n'
            '[rooms]\nwebsocket = ""\nlisten = ""\n[http]\nlisten = ""\n%s'
            % (url, port, cluster))


def start_node(tmp: str, text: str, port: int):

    os.makedirs(tmp, exist_ok=True)
    config = os.path.join(tmp, "gamed.toml")
    with open(config, "w") as fh:
        fh.write(text)
    return launch(tmp, config, port)


def run(setup: str, args) -> dict:
    import psycopg2

    from gamed.store.engines import create_engine

    tmp = tempfile.mkdtemp(prefix="gamed-bench-cluster-")
    dbname = "gamed_bench_%s" % secrets.token_hex(4)
    admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + dbname)
    url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
    prefix = "gamedbench:%s:" % secrets.token_hex(4)
    redis = "" if setup == "single" else args.redis
    ports = [free_port() for _ in range(1 if setup == "single" else 2)]
    procs = []
    try:
        for i, port in enumerate(ports):  # one after the other: the first migrates
            procs.append(start_node(os.path.join(tmp, "n%d" % i),
                                    node_config(url, port, redis, prefix, "n%d" % i), port))
        time.sleep(1.0 if redis else 0)  # the nodes see each other (heartbeat 1 s)
        cpu_before = [cpu_seconds(proc.pid) for proc in procs]
        redis_before = redis_cpu(args.redis) if redis else 0.0
        queue = multiprocessing.get_context("fork").Queue()
        if setup == "single":
            jobs = [(ports[0], args.pairs)]
        elif setup == "same-node":
            jobs = [(ports[0], args.pairs // 2), (ports[1], args.pairs - args.pairs // 2)]
        else:
            jobs = [((ports[0], ports[1]), args.pairs // 2),
                    ((ports[1], ports[0]), args.pairs - args.pairs // 2)]
        workers = [multiprocessing.get_context("fork").Process(
            target=workload.worker, args=(port, n, args.seconds, args.warmup, 1000 + i, queue))
            for i, (port, n) in enumerate(jobs) if n]
        for w in workers:
            w.start()
        results = [queue.get(timeout=args.seconds + args.warmup + 60) for _ in workers]
        for w in workers:
            w.join(10)
        node_cpu = sum(cpu_seconds(proc.pid) for proc in procs) - sum(cpu_before)
        redis_used = (redis_cpu(args.redis) - redis_before) if redis else 0.0
    finally:
        for proc in procs:
            workload.stop_daemon(proc)
    stored = workload.count_moves(url)
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS " + dbname)
    admin.close()
    if redis:
        _clean_redis(args.redis, prefix)
    shutil.rmtree(tmp, ignore_errors=True)
    latencies = [lat for r in results for lat in r["latencies"]]
    opponent = [lat for r in results for lat in r.get("opponent_latencies", [])]
    acked = sum(r["acked_total"] for r in results)
    return {
        "setup": setup, "pairs": args.pairs,
        "moves_per_second": round(sum(r["moves"] for r in results) / args.seconds, 1),
        "latency_ms_p50": round(1000 * workload.percentile(latencies, 50), 2),
        "latency_ms_p99": round(1000 * workload.percentile(latencies, 99), 2),
        "opponent_ms_p50": round(1000 * workload.percentile(opponent, 50), 2),
        "opponent_ms_p99": round(1000 * workload.percentile(opponent, 99), 2),
        "node_cpu_ms_per_move": round(1000 * node_cpu / max(1, acked), 3),
        "redis_cpu_ms_per_move": round(1000 * redis_used / max(1, acked), 3),
        "client_errors": sum(r["errors"] for r in results),
        "error_codes": {code: sum(r["error_codes"].get(code, 0) for r in results)
                        for code in sorted({c for r in results for c in r["error_codes"]})},
        "every_move_durable": stored >= acked,
    }


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(url: str) -> float:
    """CPU seconds the Redis server has used (user + system, its INFO)."""
    from gamed.cluster.settings import parse_redis_url
    from tests.cluster.redisutil import BlockingRedis

    parsed = parse_redis_url(url)
    client = BlockingRedis(parsed.host, parsed.port, parsed.db)
    info = client.call("INFO", "cpu")
    client.close()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def _clean_redis(url: str, prefix: str) -> None:
    from gamed.cluster.settings import parse_redis_url
    from tests.cluster.redisutil import BlockingRedis

    parsed = parse_redis_url(url)
    client = BlockingRedis(parsed.host, parsed.port, parsed.db)
    client.delete_prefix(prefix)
    client.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", default="single,same-node,cross-node")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from support import median, wait_for_quiet

    setups = args.setups.split(",")
    print("cluster: %d pairs, %g s per run, %d rounds, %s" % (
        args.pairs, args.seconds, args.rounds, time.strftime("%Y-%m-%d %H:%M UTC",
                                                             time.gmtime())), flush=True)
    ratios = {setup: [] for setup in setups}
    for round_ in range(args.rounds):
        reports = {}
        for setup in (setups if round_ % 2 == 0 else setups[::-1]):
            wait_for_quiet()
            reports[setup] = run(setup, args)
        reference = (reports["single"]["moves_per_second"] if "single" in reports
                     else float("nan")) or float("nan")
        for setup in setups:
            report = reports[setup]
            report["ratio_to_single"] = round(report["moves_per_second"] / reference, 3)
            ratios[setup].append(report["ratio_to_single"])
            print(json.dumps(report), flush=True)
    print(json.dumps({"median_ratio_to_single": {setup: median(values)
                                                 for setup, values in ratios.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
