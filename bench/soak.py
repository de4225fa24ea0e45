"""A bounded soak: hours of churn compressed into minutes, looking for leaks.

    python bench/soak.py [--minutes 10] [--interval 60] [--warmup 2] [--database URL]

The real daemon (`twistd gamed`, every service, SQLite unless --database) is played by one
client thread per game, each repeating a whole session as fast as it goes: connect, log
in, play a little, disconnect --
  * uttt: two registered players (a pool of 50 pairs) log in, one invites the other, both
    move, one ends the match (a ranked abandon), both leave;
  * novaglide: two players log in and queue, play a few ticks, one drops, the other wins
    by forfeit after rejoin_grace (0.5 s here), both leave;
  * blockattack: two players connect, report, one forfeits, both acknowledge game_end;
  * rooms: three players (WebSocket and lines) log in, make a room, start, relay frames,
    leave;
  * http: the uttt leaderboard.
Every --interval seconds it prints the daemon's resident memory, open descriptors, the ten
commonest live object types (`/debug/objects`, turned on for the soak), the p99 of the
requests timed in that interval (each request's reply or delivery), sessions done,
errors, and the database transactions that took the most time in it. At the end: the slope of memory and descriptors after --warmup minutes (least
squares, per minute) and the object types that grew most over that time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from support import free_port, listen, start_daemon  # noqa: E402 (bench/ on sys.path)

from tests.integration.clients import (Block, Nova, Rooms, Uttt,  # noqa: E402
                                      start_pair, uttt_move)


class Recorder:
    """Request times and errors, per interval; shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: list = []
        self.sessions: dict = {}
        self.errors: list = []

    def timed(self, func, *args, **kwargs):
        started = time.perf_counter()
        result = func(*args, **kwargs)
        with self.lock:
            self.times.append(time.perf_counter() - started)
        return result

    def done(self, game: str) -> None:
        with self.lock:
            self.sessions[game] = self.sessions.get(game, 0) + 1

    def failed(self, game: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append("%s: %s" % (game, "".join(
                traceback.format_exception_only(type(exc), exc)).strip()[:200]))

    def take(self):
        with self.lock:
            out = self.times, self.sessions, self.errors
            self.times, self.sessions, self.errors = [], {}, []
        return out


def uttt_session(ports, n: int, rec: Recorder) -> None:
    a, b = Uttt(ports["uttt_ws"]), Uttt(ports["uttt_ws"])
    try:
        names = "soak_u%da" % (n % 50), "soak_u%db" % (n % 50)
        for client, name in ((a, names[0]), (b, names[1])):
            assert rec.timed(client.login, name, "pw")["success"]
        a.send("match_request", {"player": names[1]})
        match_id = rec.timed(b.wait, "match_update")["id"]
        rec.timed(uttt_move, a, match_id, (1, 1, 1, 1))
        rec.timed(uttt_move, b, match_id, (1, 1, 0, 0))
        a.send("end_match", {"id": match_id})
        assert rec.timed(a.wait, "end_match_response")["success"]
    finally:
        a.close()
        b.close()


def nova_session(ports, n: int, rec: Recorder) -> None:
    x, y = Nova(ports["novaglide"]), Nova(ports["novaglide"])
    try:
        for client, name in ((x, "soakn%dx" % (n % 50)), (y, "soakn%dy" % (n % 50))):
            assert rec.timed(client.login, name, "pw")["data"][0] == "online"
            client.request("get_elo", [name])
            rec.timed(client.flag, "client_elo")
            client.request("queued_solo")
        for client in (x, y):
            for _ in range(5):
                client.flag("game_state_1")
        # the one who drops alternates, so that ratings (and the matchmaking window the
        # pair needs) stay near each other over hours
        stays, leaves = (x, y) if (n // 50) % 2 == 0 else (y, x)
        leaves.close()
        assert stays.flag("end_game_state_1", limit=20000)["data"][1] is not None
    finally:
        x.close()
        y.close()


def block_session(ports, n: int, rec: Recorder) -> None:
    names = "soakb%da" % (n % 500), "soakb%db" % (n % 500)
    one, two = Block(ports["blockattack"], *names), Block(ports["blockattack"], *names[::-1])
    try:
        rec.timed(start_pair, one, two)
        for player in (one, two):
            player.flux(score=10, pieces=1)
            rec.timed(player.wait, lambda m: m.get("command") == "game_flux")
        two.forfeit()
        for player in (one, two):
            rec.timed(player.wait, lambda m: m.get("command") == "game_end", 200,
                      two.forfeit if player is two else None)
            player.ack_end()
    finally:
        one.close()
        two.close()


def rooms_session(ports, n: int, rec: Recorder) -> None:
    players = [Rooms(ports["rooms_ws"]), Rooms(ports["rooms_tcp"], websocket=False),
               Rooms(ports["rooms_ws"])]
    try:
        for index, player in enumerate(players):
            assert rec.timed(player.login, "soakr%d_%d" % (n, index))["result"] == "ok"
        invite = rec.timed(players[0].call, "room_create")["inviteId"]
        for player in players[1:]:
            assert rec.timed(player.call, "room_join", inviteId=invite)["result"] == "ok"
        players[0].request("room_start", connectionType="server_broadcast")
        for player in players:
            start = player.wait(lambda m: m.get("type") == "event_room_start")
            player.request("event_room_start_ack", requestId=start["id"])
        for seq in range(5):
            started = time.perf_counter()
            players[0].conn.send({"seq": seq})
            for player in players[1:]:
                player.wait(lambda m, s=seq: m.get("seq") == s)
            with rec.lock:
                rec.times.append(time.perf_counter() - started)
    finally:
        for player in players:
            player.close()


def http_session(ports, n: int, rec: Recorder) -> None:
    url = "http://127.0.0.1:%d/api/leaderboard/uttt" % ports["http"]
    with rec.timed(urllib.request.urlopen, url, timeout=10) as reply:
        json.loads(reply.read())
    time.sleep(0.2)


def loop(game: str, session, ports, rec: Recorder, stop: threading.Event) -> None:
    for n in itertools.count():
        if stop.is_set():
            return
        try:
            session(ports, n, rec)
            rec.done(game)
        except Exception as exc:  # noqa: BLE001 - counted and shown, the soak goes on
            rec.failed(game, exc)
            time.sleep(0.5)


def daemon_sample(pid: int, http_port: int) -> dict:
    with open("/proc/%d/status" % pid) as handle:
        rss = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    fds = len(os.listdir("/proc/%d/fd" % pid))
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/objects" % http_port,
                                timeout=30) as reply:
        objects = dict(json.loads(reply.read())["objects"])
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port,
                                timeout=30) as reply:
        database = {}  # description -> [seconds, count] so far
        for line in reply.read().decode().splitlines():
            for suffix, slot in (("_sum{", 0), ("_count{", 1)):
                if line.startswith("gamed_db_query_seconds" + suffix):
                    name = line.split('description="', 1)[1].split('"', 1)[0]
                    database.setdefault(name, [0.0, 0.0])[slot] = float(line.rsplit(" ", 1)[1])
    return {"rss_kb": rss, "fds": fds, "objects": objects, "database": database}


def slope(points: list) -> float:
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes left out of the "
                        "slopes")
    parser.add_argument("--database", default=None, help="a postgresql:// URL (default: "
                        "SQLite in a temporary directory)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gamed-soak-")
    ports = {name: free_port() for name in ("novaglide", "uttt_ws", "rooms_ws", "rooms_tcp",
                                             "http")}
    ports["blockattack"] = free_port(2)  # SOCK_DGRAM
    sections = {
        "novaglide": {"listen": listen(ports["novaglide"]), "rejoin_grace": "0.5"},
        "blockattack": {"listen": listen(ports["blockattack"], "udp")},
        "uttt": {"websocket": listen(ports["uttt_ws"])},
        "rooms": {"websocket": listen(ports["rooms_ws"]), "listen": listen(ports["rooms_tcp"])},
        "http": {"listen": listen(ports["http"]), "debug_objects": "true"},
    }
    if args.database:
        sections["database"] = {"url": json.dumps(args.database)}
    daemon = start_daemon(tmp, sections, ports["http"])
    rec, stop = Recorder(), threading.Event()
    threads = [threading.Thread(target=loop, args=(game, session, ports, rec, stop),
                                daemon=True)
               for game, session in (("uttt", uttt_session), ("novaglide", nova_session),
                                     ("blockattack", block_session),
                                     ("rooms", rooms_session), ("http", http_session))]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    samples, all_errors = [], 0
    print("%6s %9s %6s %9s %9s  %-40s %s" % ("min", "RSS MB", "fds", "p99 ms", "requests",
                                            "sessions", "top objects"))
    try:
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(min(args.interval, args.minutes * 60 - (time.monotonic() - started)))
            minute = (time.monotonic() - started) / 60
            times, sessions, errors = rec.take()
            sample = daemon_sample(daemon.pid, ports["http"])
            sample["minute"] = minute
            samples.append(sample)
            all_errors += len(errors)
            times.sort()
            p99 = times[int(len(times) * 0.99) - 1] * 1000 if times else float("nan")
            top = sorted(sample["objects"].items(), key=lambda kv: -kv[1])[:10]
            print("%6.1f %9.1f %6d %9.2f %9d  %-40s %s" % (
                minute, sample["rss_kb"] / 1024, sample["fds"], p99, len(times),
                " ".join("%s=%d" % kv for kv in sorted(sessions.items())),
                " ".join("%s:%d" % kv for kv in top)))
            before = samples[-2]["database"] if len(samples) > 1 else {}
            spent = sorted(((s - before.get(k, [0, 0])[0], c - before.get(k, [0, 0])[1], k)
                            for k, (s, c) in sample["database"].items()), reverse=True)[:4]
            print("       database time: " + ", ".join(
                "%s %.1f s (%d, %.2f ms each)" % (k, s, c, 1000 * s / c if c else 0)
                for s, c, k in spent))
            for error in errors[:5]:
                print("    error:", error)
            sys.stdout.flush()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        alive = daemon.poll() is None
        daemon.terminate()
        daemon.wait(30)
    steady = [s for s in samples if s["minute"] >= args.warmup] or samples
    rss_slope = slope([(s["minute"], s["rss_kb"]) for s in steady])
    fd_slope = slope([(s["minute"], s["fds"]) for s in steady])
    print("after %.1f min of warm-up: RSS %+.1f KB/min, descriptors %+.2f/min over %d "
          "samples; errors %d; daemon %s" % (args.warmup, rss_slope, fd_slope, len(steady),
                                             all_errors, "up" if alive else "DIED"))
    if len(steady) >= 2:
        first, last = steady[0]["objects"], steady[-1]["objects"]
        grew = sorted(((last.get(k, 0) - first.get(k, 0), k) for k in set(first) | set(last)),
                      reverse=True)[:5]
        print("object types that grew most after warm-up:",
              ", ".join("%s %+d" % (k, d) for d, k in grew))


if __name__ == "__main__":
    main()
