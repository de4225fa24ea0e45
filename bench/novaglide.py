"""How many concurrent novaglide matches one gamed process sustains at 60 Hz.

    python bench/novaglide.py [--matches 50,100,150,200,250,300] [--seconds 5] [--input-hz 60]

Starts the real daemon (`twistd gamed`, novaglide only, SQLite), then for each N logs in
2N bot clients over loopback, queues them into N matches and lets every bot send
`ingame` input (`--input-hz` per bot, the real client sends every frame) while it reads
every `game_state_1`. For each N it reports the daemon's late ticks (from /metrics:
ticks that had to catch up frames), its CPU use (from /proc), and the p99 latency from
sending an input to receiving the next state. The largest N with < 1% late ticks is the
answer; the goal is 250 matches (500 players).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import tempfile
import time
import urllib.request

from support import free_port, listen, start_daemon  # noqa: E402 (bench/ is sys.path[0])


def start(tmp: str):
    ports = {"novaglide": free_port(), "http": free_port()}
    proc = start_daemon(tmp, {
        "accounts": {"address_burst": "100000", "bcrypt_queue_limit": "100000"},
        "novaglide": {"listen": '"tcp:%d:interface=127.0.0.1:backlog=1024"' % ports["novaglide"],
                      "rate": "1000.0", "burst": "2000", "rejoin_grace": "0.5"},
        "http": {"listen": listen(ports["http"])}}, ports["novaglide"])
    return proc, ports


def metric(http_port: int, name: str) -> float:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(match.group(1)) if match else 0.0


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bot:
    def __init__(self, port: int, name: str):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.name = name
        self.buf = b""
        self.states = 0
        self.sent_at = None  # when the input whose answer we time was sent
        self.latencies: list = []

    def send(self, flag: str, data) -> None:
        self.sock.sendall(json.dumps({"time": "2026-11-22T00:00:00", "sender": self.name,
                                      "flag": flag, "data": data}).encode() + b"\n")

    def wait(self, flag: str) -> dict:
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                message = json.loads(line)
                if message.get("flag") == flag:
                    return message
            self.buf += self.sock.recv(65536)


def set_up(port: int, matches: int, run: int) -> list:
    bots = [Bot(port, "b%d_%d" % (run, n)) for n in range(2 * matches)]
    for bot in bots:
        bot.send("log_in_data", [bot.name, "pw"])
    for bot in bots:
        reply = bot.wait("change_of_status")
        assert reply["data"][0] == "online", reply
    for bot in bots:
        bot.send("queued_solo", ["no_data"])
    for bot in bots:
        bot.wait("game_state_1")
        bot.sock.setblocking(False)
    return bots


def drive(bots: list, seconds: float, input_hz: float) -> None:
    selector = selectors.DefaultSelector()
    for bot in bots:
        selector.register(bot.sock, selectors.EVENT_READ, bot)
    keys = (["d"], ["a"], ["w"], ["s"], [])
    interval = 1.0 / input_hz
    next_send = time.perf_counter()
    end = next_send + seconds
    round_no = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now >= next_send:
            round_no += 1
            for n, bot in enumerate(bots):
                data = json.dumps({"time": "2026-11-22T00:00:00", "sender": bot.name,
                                   "flag": "ingame", "data": [[640, 360],
                                                              keys[(n + round_no) % 5],
                                                              "wsad"]}).encode() + b"\n"
                try:
                    bot.sock.send(data)
                    if bot.sent_at is None:
                        bot.sent_at = time.perf_counter()
                except BlockingIOError:
                    pass
            next_send += interval
        for key, _ in selector.select(timeout=max(0.0, min(next_send, end) - now)):
            bot = key.data
            try:
                chunk = bot.sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError("the daemon closed a bot's connection")
            count = chunk.count(b"\n")
            bot.states += count
            if count and bot.sent_at is not None:
                bot.latencies.append(time.perf_counter() - bot.sent_at)
                bot.sent_at = None
    selector.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", default="50,100,150,200,250,300")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--input-hz", type=float, default=60.0)
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gamed-bench-novaglide-")
    proc, ports = start(tmp)
    print("novaglide: %s s per step, bots send input at %g Hz, %d cores"
          % (args.seconds, args.input_hz, os.cpu_count()))
    print("%8s %8s %10s %12s %10s %17s %10s" % ("matches", "players", "late", "states/s",
                                                "daemon CPU", "p99 input->state",
                                                "bots' CPU"))
    best = 0
    try:
        for run, matches in enumerate(int(n) for n in args.matches.split(",")):
            bots = set_up(ports["novaglide"], matches, run)
            time.sleep(0.5)
            ticks0 = metric(ports["http"], "gamed_novaglide_ticks_total")
            late0 = metric(ports["http"], "gamed_novaglide_late_ticks_total")
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            own0 = time.process_time()
            drive(bots, args.seconds, args.input_hz)
            wall = time.perf_counter() - wall0
            cpu = (cpu_seconds(proc.pid) - cpu0) / wall
            client_cpu = (time.process_time() - own0) / wall
            ticks = metric(ports["http"], "gamed_novaglide_ticks_total") - ticks0
            late = metric(ports["http"], "gamed_novaglide_late_ticks_total") - late0
            states = sum(bot.states for bot in bots) / args.seconds
            latencies = sorted(lat for bot in bots for lat in bot.latencies)
            p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
            late_share = late / ticks if ticks else 1.0
            print("%8d %8d %9.2f%% %12.0f %9.0f%% %12.1f ms %9.0f%%"
                  % (matches, 2 * matches, 100 * late_share, states, 100 * cpu, p99,
                     100 * client_cpu), flush=True)
            for bot in bots:
                bot.sock.close()
            time.sleep(1.0)
            if late_share < 0.01:
                best = matches
            else:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print("largest N with < 1%% late ticks: %d matches (%d players); goal 250: %s"
          % (best, 2 * best, "met" if best >= 250 else "NOT met"))


if __name__ == "__main__":
    main()
