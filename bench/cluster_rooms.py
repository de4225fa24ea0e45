"""rooms' relay across two nodes: delivered frames/s of one 8-player room, with every
player on the room's node, and with half of them on the other node (tunnelled), same run.

    python bench/cluster_rooms.py [--players 8] [--seconds 5] [--window 256] [--rounds 3]
                                  [--redis redis://127.0.0.1:6379/0]
                                  [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Two clustered nodes on one PostgreSQL database and Redis, TCP JSON lines, the frames of
bench/rooms.py (40 bytes, `sender` stamped by the server, window-limited so no queue
grows). `same-node`: the room and every player on node 0. `split`: the room on node 0,
players 1, 3, 5, ... on node 1, so every frame they send and every frame they receive
crosses Redis. The set-ups alternate `--rounds` times after a wait for a quiet machine;
printed are each round's figures and the median ratio split / same-node.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import rooms as workload  # noqa: E402  (bench/rooms.py)
from support import free_port, launch, median, wait_for_quiet  # noqa: E402




def start_node(tmp: str, url: str, port: int, redis: str, prefix: str, name: str):

    os.makedirs(tmp, exist_ok=True)
    config = os.path.join(tmp, "gamed.toml")
    with open(config, "w") as fh:
        fh.write('[database]\nurl = "%s"\n[accounts]\nbcrypt_cost = 4\n'
                 '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n[uttt]\n'
                 'websocket = ""\nlisten = ""\n[rooms]\nwebsocket = ""\n'
                 'listen = "tcp:%d:interface=127.0.0.1"\nrate = 1000000.0\nburst = 1000000\n'
                 '[http]\nlisten = ""\n[cluster]\nredis_url = "%s"\nnode_name = "%s"\n'
                 'key_prefix = "%s"\n' % (url, port, redis, name, prefix))
    return launch(tmp, config, port)


def room(ports: list, players: int) -> list:
    conns = [workload.Conn(ports[n % len(ports)], False) for n in range(players)]
    for n, conn in enumerate(conns):
        conn.send(json.dumps({"id": 0, "type": "login", "details": {"username": "p%d" % n}}))
        conn.wait_for("login_response")
    conns[0].send(json.dumps({"id": 1, "type": "room_create"}))
    invite = conns[0].wait_for("room_create_response")["inviteId"]
    for conn in conns[1:]:
        conn.send(json.dumps({"id": 1, "type": "room_join", "inviteId": invite}))
        reply = conn.wait_for("room_join_response")
        assert reply.get("result") == "ok", reply
    conns[0].send(json.dumps({"id": 2, "type": "room_start",
                              "connectionType": "server_broadcast"}))
    for conn in conns:
        event = conn.wait_for("event_room_start")
        conn.send(json.dumps({"id": 3, "type": "event_room_start_ack", "requestId": event["id"]}))
    time.sleep(0.3)
    for conn in conns:
        conn.sock.setblocking(False)
        try:
            while conn.sock.recv(65536):
                pass
        except BlockingIOError:
            pass
        conn.buf = b""
    return conns


def main(argv=None) -> int:
    import psycopg2

    from gamed.store.engines import create_engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gamed-bench-clrooms-")
    dbname = "gamed_bench_%s" % secrets.token_hex(4)
    admin = psycopg2.connect(**create_engine(args.postgres).connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + dbname)
    url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
    prefix = "gamedbench:%s:" % secrets.token_hex(4)
    ports = [free_port(), free_port()]
    procs = []
    ratios = []
    try:
        for n, port in enumerate(ports):
            procs.append(start_node(os.path.join(tmp, "n%d" % n), url, port, args.redis,
                                    prefix, "n%d" % n))
        time.sleep(2.0)  # both joined
        size = workload.gamed_frame_size(False)
        for n in range(args.rounds):
            wait_for_quiet()
            order = ("same-node", "split") if n % 2 == 0 else ("split", "same-node")
            figures = {}
            for setup in order:
                conns = room(ports[:1] if setup == "same-node" else ports, args.players)
                figures[setup] = workload.measure(conns, args.seconds, args.window, size)
                workload.close_all(conns)
                time.sleep(0.5)
            ratio = figures["split"] / figures["same-node"]
            ratios.append(ratio)
            print(json.dumps({"round": n + 1, "same_node_frames_per_s": round(figures["same-node"]),
                              "split_frames_per_s": round(figures["split"]),
                              "ratio": round(ratio, 3)}))
            sys.stdout.flush()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS " + dbname)
        admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"median_ratio_split_to_same_node": round(median(ratios), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
