"""novaglide's input-to-state latency when a player's match runs on another node.

    python bench/cluster_novaglide.py [--matches 20] [--seconds 8] [--input-hz 60]
                                      [--rounds 3] [--redis redis://127.0.0.1:6379/0]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Two set-ups, alternated `--rounds` times after a wait for a quiet machine, each on a fresh
PostgreSQL database: `single` (one node, no Redis) and `split` (two clustered nodes, the two
bots of every match on different nodes: one of them plays through the other node). The
bots are bench/novaglide.py's (input every frame, a direction held for a quarter second,
then reversed; latency = from sending a reversal to the first state showing it, which
includes waiting for the next 60 Hz tick). For `split` the bots are told apart by where
their match ran (from the running node's log): `local` bots play on the node that runs
their match, `remote` bots through the other one; the added latency is remote minus
local of the same run.

Matches held: the daemons' CPU (from /proc, all nodes summed) per match-second while the
bots play, and the states each bot received per second (60 when every tick went out). One
node can hold about 1000 / (CPU ms per match-second) matches on the core it runs on; two
nodes with a core each, every match split, hold 2 x that of their own figure, so
`two_nodes_hold_x_one` = 2 x single / split CPU per match-second (same run). A split match
costs more than a one-node match (its states and inputs cross Redis); a match whose two
players are on one node costs what it costs alone. CPU time is far less sensitive to the
machine's load than the ticks' lateness, so it is the figure to trust on a busy host.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import novaglide as workload  # noqa: E402  (bench/novaglide.py)
from support import free_port, launch, median, wait_for_quiet  # noqa: E402




def start_node(tmp: str, url: str, port: int, redis: str, prefix: str, name: str):
    os.makedirs(tmp, exist_ok=True)
    cluster = ('[cluster]\nredis_url = "%s"\nnode_name = "%s"\nkey_prefix = "%s"\n'
               % (redis, name, prefix)) if redis else ""
    config = os.path.join(tmp, "gamed.toml")
    with open(config, "w") as fh:
        fh.write('[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
                 '[novaglide]\nlisten = "tcp:%d:interface=127.0.0.1"\nrate = 100000.0\n'
                 'burst = 100000\n[blockattack]\nlisten = ""\n[uttt]\nwebsocket = ""\n'
                 'listen = ""\n[rooms]\nwebsocket = ""\nlisten = ""\n[http]\nlisten = ""\n%s'
                 % (url, port, cluster))
    return launch(tmp, config, port)


def set_up(ports: list, matches: int, run: int) -> list:
    """One match at a time, so each pairs the two bots just queued (one per port)."""
    bots = []
    for n in range(matches):
        pair = [workload.Bot(ports[i % len(ports)], "c%d_%d_%d" % (run, n, i))
                for i in range(2)]
        for bot in pair:
            bot.port = ports[pair.index(bot) % len(ports)]
            bot.send("log_in_data", [bot.name, "pw"])
            assert bot.wait("change_of_status")["data"][0] == "online"
        for bot in pair:
            bot.send("queued_solo", ["no_data"])
        for bot in pair:
            bot.side = bot.wait("game_state_1")["player_id"]
            bot.sock.setblocking(False)
        bots += pair
    return bots


def hosts(tmp: str, names: list) -> dict:
    """bot name -> the node directory whose log shows its match starting."""
    found = {}
    for node in names:
        with open(os.path.join(tmp, node, "gamed.log")) as fh:
            for line in fh:
                m = re.search(r"novaglide: match \d+ (\S+) vs (\S+)", line)
                if m:
                    found[m.group(1)] = found[m.group(2)] = node
    return found


def run(setup: str, args, run_no: int) -> dict:
    import psycopg2

    from gamed.store.engines import create_engine

    tmp = tempfile.mkdtemp(prefix="gamed-bench-clnova-")
    dbname = "gamed_bench_%s" % secrets.token_hex(4)
    admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + dbname)
    url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
    prefix = "gamedbench:%s:" % secrets.token_hex(4)
    names = ["n0"] if setup == "single" else ["n0", "n1"]
    ports = [free_port() for _ in names]
    procs = []
    try:
        for name, port in zip(names, ports):
            procs.append(start_node(os.path.join(tmp, name), url, port,
                                    "" if setup == "single" else args.redis, prefix, name))
        if setup != "single":
            time.sleep(1.5)  # the nodes see each other
        bots = set_up(ports, args.matches, run_no)
        workload.drain(bots)
        cpu_before = sum(workload.cpu_seconds(proc.pid) for proc in procs)
        started = time.perf_counter()
        workload.drive(bots, args.seconds, args.input_hz)
        elapsed = time.perf_counter() - started
        cpu = sum(workload.cpu_seconds(proc.pid) for proc in procs) - cpu_before
        for bot in bots:
            bot.sock.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    where = hosts(tmp, names)
    groups = {"all": [], "local": [], "remote": []}
    for bot in bots:
        groups["all"] += bot.latencies
        node = names[ports.index(bot.port)]
        groups["local" if where.get(bot.name, node) == node else "remote"] += bot.latencies
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS " + dbname)
    admin.close()
    shutil.rmtree(tmp, ignore_errors=True)
    row = {"setup": setup, "matches": args.matches,
           "cpu_ms_per_match_second": round(1000 * cpu / (args.matches * elapsed), 3),
           "states_per_bot_second": round(sum(bot.states for bot in bots)
                                          / (len(bots) * elapsed), 1)}
    for group, values in groups.items():
        if values:
            row[group] = {"p50_ms": round(workload.percentile(sorted(values), 0.5), 1),
                          "p99_ms": round(workload.percentile(sorted(values), 0.99), 1),
                          "samples": len(values)}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--input-hz", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    added, held = [], []
    for n in range(args.rounds):
        wait_for_quiet()
        order = ("single", "split") if n % 2 == 0 else ("split", "single")
        rows = {setup: run(setup, args, n * 2 + i) for i, setup in enumerate(order)}
        for setup in ("single", "split"):
            print(json.dumps(dict(rows[setup], round=n + 1)))
        split = rows["split"]
        if "remote" in split and "local" in split:
            added.append(split["remote"]["p50_ms"] - split["local"]["p50_ms"])
        held.append(round(2 * rows["single"]["cpu_ms_per_match_second"]
                          / split["cpu_ms_per_match_second"], 2))
        sys.stdout.flush()
    if added:
        print(json.dumps({"added_p50_ms_remote_minus_local_median": round(median(added), 1),
                          "rounds": added}))
    print(json.dumps({"two_nodes_hold_x_one_median": median(held), "rounds": held}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
