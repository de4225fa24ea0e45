"""How many concurrent novaglide matches one gamed process sustains at 60 Hz.

    python bench/novaglide.py [--matches 50,100,150,200,250,300] [--seconds 5]
                              [--input-hz 60] [--rounds 3] [--wire lines|classic]
                              [--frame-ms 1,12] [--no-reference]

Starts the real daemon (`twistd gamed`, novaglide only, SQLite), then for each N logs in
2N bot clients over loopback, queues them into N matches and lets every bot send
`ingame` input (`--input-hz` per bot, the real client sends every frame) while it reads
every `game_state_1`. Each bot holds a direction for a quarter of a second, then
reverses. For each N it reports, from /metrics, the daemon's late ticks (ticks that
missed a frame and had to catch up), the share of ticks that started over 4 ms late and
the p99 of a tick's own work; its CPU use (from /proc); and the p50/p99 latency from
sending a reversal to receiving the first state that shows the disc moving the new way
(this includes waiting for the next tick: inputs apply on the next tick). The largest N
whose median round has < 1% late ticks is the answer.

The same-run reference (`--serve-reference`, on by default) is a bare Twisted server that
runs N 60 Hz matches with no rules: per match a `LoopingCall` that decodes the JSON input
lines received since the last tick and writes a state line of gamed's size (a real state
line of gamed's, taken at the start) to both players. Its late ticks are the ticks whose
`LoopingCall` count was above 1 (a frame missed). Each N is measured on the reference and
gamed alternately, `--rounds` times, each after a wait for a quiet machine; printed are the
largest N each holds and gamed's as a ratio of the reference's (goal >= 0.60).

`--wire classic` measures the original desktop client's wire (`classic_listen`): bots in
its lockstep (a pickled `ingame` request with pygame's 512-key tuple, then block for the
one pickled reply, which the server sends after its next tick), interleaved round by round
with the JSON-lines bots as the same-run reference. It prints both largest N and their
ratio (the goal is classic >= 70% of JSON lines) and, for every wire, the daemon's CPU per
state sent (one state per player-frame), the figure that load on the host moves least.

The classic bots' loop is the client's own (`Game.start_match`: draw the frame, read the
keys, send, block for the reply), so a bot sends its next request its frame time after the
reply, not at once. The client's frame (`Game.draw` + `check_inputs`, pygame 2.6) measured
1.1-3.9 ms (p10-p90) under SDL's dummy video driver, where nothing reaches a screen, and
about 50 ms under Xvfb on a loaded machine; a real player's machine lies in between.
`--frame-ms LOW,HIGH` gives the bots frame times from that range (different machines), in
SLOTS groups like the JSON-lines bots' send slots, so both wires' requests arrive in the
same pattern: SLOTS groups a frame. The default 1-12 ms keeps every bot under one tick
(16.7 ms), so each still sends 60 requests a second (the server answers once per tick: no
bot can send more). `0,0` sends at once, as no real client can: every request of every
player then lands in the same instant after each tick.
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import io
import itertools
import json
import os
import pickle
import re
import selectors
import socket
import sys
import tempfile
import time
import urllib.request

from support import (free_port, listen, median,  # noqa: E402 (bench/ is sys.path[0])
                     start_daemon, wait_for_quiet)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.novaglide.classic_client import pressed, scancode_wrapper_registered  # noqa: E402


def start(tmp: str):
    ports = {"novaglide": free_port(), "classic": free_port(), "http": free_port()}
    proc = start_daemon(tmp, {
        "accounts": {"address_burst": "100000", "bcrypt_queue_limit": "100000"},
        "novaglide": {"listen": '"tcp:%d:interface=127.0.0.1:backlog=1024"' % ports["novaglide"],
                      "classic_listen": '"tcp:%d:interface=127.0.0.1:backlog=1024"'
                                        % ports["classic"],
                      "rate": "1000.0", "burst": "2000", "rejoin_grace": "0.5"},
        "http": {"listen": listen(ports["http"])}}, ports["novaglide"])
    return proc, ports


# -- the reference: N bare 60 Hz matches, no rules -----------------------------------------------

def serve_reference(template_file: str, port_file: str) -> None:
    from twisted.internet import protocol, reactor, task
    from twisted.protocols.basic import LineReceiver

    with open(template_file) as handle:
        state = json.loads(handle.read())
    lines = {}
    for side in (1, 2):
        state["player_id"] = side
        lines[side] = json.dumps(state, separators=(",", ":")).encode("utf-8") + b"\n"
    stats = {"ticks": 0, "late": 0}
    waiting = []

    class Match:
        def __init__(self, players):
            self.players = players
            for side, player in enumerate(players, 1):
                player.match, player.side = self, side
                player.transport.write(lines[side])
            self.loop = task.LoopingCall.withCount(self.tick)
            self.loop.start(1 / 60.0, now=False)

        def tick(self, count):
            stats["ticks"] += 1
            if count > 1:
                stats["late"] += 1
            for player in self.players:
                inputs, player.inputs = player.inputs, []
                for line in inputs:
                    player.last_input = json.loads(line)
            for player in self.players:
                player.transport.write(lines[player.side])

        def stop(self):
            if self.loop.running:
                self.loop.stop()

    class Player(LineReceiver):
        delimiter = b"\n"
        match = None

        def connectionMade(self):
            self.transport.setTcpNoDelay(True)
            self.inputs = []

        def lineReceived(self, line):
            if self.match is not None:
                self.inputs.append(line)
                return
            message = json.loads(line)
            flag = message.get("flag")
            if flag == "log_in_data":
                self.reply("change_of_status", ["online", "logged in"])
            elif flag == "queued_solo":
                waiting.append(self)
                if len(waiting) == 2:
                    Match([waiting.pop(0), waiting.pop(0)])
            elif flag == "bench_stats":
                self.reply("bench_stats", [stats["ticks"], stats["late"]])

        def reply(self, flag, data):
            self.transport.write(json.dumps({"time": "2026-12-02T00:00:00", "sender": "server",
                                             "flag": flag, "data": data}).encode() + b"\n")

        def connectionLost(self, reason):
            if self.match is not None:
                self.match.stop()
            if self in waiting:
                waiting.remove(self)

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Player), backlog=1024,
                             interface="127.0.0.1")
    with open(port_file + ".tmp", "w") as handle:
        handle.write(str(port.getHost().port))
    os.rename(port_file + ".tmp", port_file)
    reactor.run()


def start_reference(template: dict):
    import subprocess

    template_file = tempfile.mktemp(prefix="gamed-bench-novaglide-state-")
    with open(template_file, "w") as handle:
        json.dump(template, handle)
    port_file = tempfile.mktemp(prefix="gamed-bench-novaglide-port-")
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-reference",
                             template_file, port_file])
    for _ in range(600):
        if os.path.exists(port_file):
            with open(port_file) as handle:
                return proc, int(handle.read())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the reference server did not start")


def reference_stats(port: int) -> tuple:
    bot = Bot(port, "stats")
    bot.send("bench_stats", [])
    ticks, late = bot.wait("bench_stats")["data"]
    bot.sock.close()
    return ticks, late


def gamed_state(port: int) -> dict:
    """One game_state_1 of gamed's, as the reference's template."""
    bots = set_up(port, 1, -1)
    for bot in bots:
        bot.sock.setblocking(True)
    state = bots[0].wait("game_state_1")
    for bot in bots:
        bot.sock.close()
    return state


def metric(http_port: int, name: str) -> float:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(match.group(1)) if match else 0.0


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HOLD_ROUNDS = 15  # a bot holds a direction this many input rounds, then reverses
SLOTS = 8  # groups of bots sending at different moments of each input interval


class Bot:
    def __init__(self, port: int, name: str):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.name = name
        self.buf = b""
        self.side = 0
        self.states = 0
        self.watching = False  # parsing states: a reversal is about to be sent or pending
        self.last_x = None  # own x in the last state parsed
        self.pending = None  # (sent at, +1 or -1): a reversal not yet seen in a state
        self.latencies: list = []
        self.unseen = 0  # reversals not seen in a state before the next one was sent

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

    def receive(self, count: bool = True) -> bool:
        """Read what the socket holds (False if nothing); count the states and, while
        watching, look at them."""
        try:
            chunk = self.sock.recv(262144)
        except BlockingIOError:
            return False
        if not chunk:
            raise RuntimeError("the daemon closed a bot's connection")
        data = self.buf + chunk
        cut = data.rfind(b"\n") + 1
        self.buf = data[cut:]
        if count:
            self.states += chunk.count(b"\n")
            if self.watching and cut:
                self.lines_received(data[:cut], time.perf_counter())
        return True

    def own_x(self, line: bytes):
        """This bot's disc x in a game_state_1 line (fields 6/8 of data), without json."""
        start = line.find(b'"data":[')
        if start < 0 or b'"game_state_1"' not in line:
            return None
        fields = line[start + 8:].split(b",", 9)
        return float(fields[6] if self.side == 1 else fields[8])

    def lines_received(self, lines: bytes, now: float) -> None:
        """While watching: the first state whose x moved the new way answers the reversal."""
        for line in lines.split(b"\n"):
            x = self.own_x(line) if line else None
            if x is None:
                continue
            if self.pending is not None and self.last_x is not None:
                sent_at, sign = self.pending
                if sign * (x - self.last_x) > 0.5:
                    self.latencies.append(now - sent_at)
                    self.pending = None
                    self.watching = False
            self.last_x = x


class ClassicBot(Bot):
    """The original desktop client's lockstep: one pickled request, one pickled reply."""

    def __init__(self, port: int, name: str):
        super().__init__(port, name)
        self.sock.recv(2048)  # the greeting
        self.sender = "uknown"
        self.inputs = {}
        self.sent = 0

    def request(self, flag: str, data) -> bytes:
        return pickle.dumps({"time": datetime.datetime.now(), "sender": self.sender,
                             "flag": flag, "data": data})

    def ask(self, flag: str, data) -> dict:
        self.sock.sendall(self.request(flag, data))
        return self.reply_blocking()

    def reply_blocking(self) -> dict:
        while True:
            reply = self.take_reply()
            if reply is not None:
                return reply
            self.buf += self.sock.recv(65536)

    def take_reply(self):
        if not self.buf:
            return None
        stream = io.BytesIO(self.buf)
        try:
            reply = pickle.load(stream)
        except (EOFError, pickle.UnpicklingError):
            return None
        self.buf = self.buf[stream.tell():]
        return reply

    def send_input(self) -> None:
        """The next ingame request: hold a direction HOLD_ROUNDS requests, then reverse."""
        self.sent += 1
        toward_centre = (self.sent // HOLD_ROUNDS) % 2 == 0
        key = "d" if toward_centre == (self.side == 1) else "a"
        if self.sent % HOLD_ROUNDS == 0:
            if self.pending is not None:
                self.unseen += 1
            # last_x stays the state before this request: its reply may already show it
            self.pending = (time.perf_counter(), 1 if key == "d" else -1)
        self.sock.send(self.inputs[key])

    def replies_received(self, now: float) -> int:
        """Read the socket; for each state, look for the pending reversal. The count of
        whole replies (each lets the bot send its next request)."""
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return 0
        if not chunk:
            raise RuntimeError("the daemon closed a classic bot's connection")
        self.buf += chunk
        count = 0
        while (reply := self.take_reply()) is not None:
            count += 1
            if reply["flag"] != "game_state_1":
                continue
            self.states += 1
            x = reply["data"][6 if self.side == 1 else 8]
            if self.pending is not None and self.last_x is not None:
                sent_at, sign = self.pending
                if sign * (x - self.last_x) > 0.5:
                    self.latencies.append(now - sent_at)
                    self.pending = None
            self.last_x = x
        return count


def set_up_classic(port: int, matches: int, run: int) -> list:
    bots = [ClassicBot(port, "c%d_%d" % (run, n)) for n in range(2 * matches)]
    for bot in bots:
        reply = bot.ask("log_in_data", [bot.name, "pw"])
        assert reply["data"][0] == "online", reply
        bot.sender = reply["data"][2]
        with scancode_wrapper_registered() as wrapper:
            bot.inputs = {key: bot.request("ingame", [(640, 360), pressed(wrapper, key), "wsad"])
                          for key in ("a", "d")}
    for bot in bots:
        assert bot.ask("queued_solo", ["no_data"])["flag"] == "Waiting_for_opponent"
    waiting = list(bots)
    while waiting:  # the loading screen polls until its match's first state
        still = []
        for bot in waiting:
            reply = bot.ask("Waiting_for_opponent", ["no_data"])
            if reply["flag"] == "game_state_1":
                bot.side = reply["data"][0]
                bot.sock.setblocking(False)
            else:
                still.append(bot)
        waiting = still
    return bots


def frame_times(count: int, low_ms: float, high_ms: float) -> list:
    """Each classic bot's frame time in seconds (its machine's speed): SLOTS times spread
    evenly over [low_ms, high_ms], dealt round-robin, so that requests come in SLOTS groups
    a frame, as the JSON-lines bots' do."""
    times = [(low_ms + (high_ms - low_ms) * (slot + 0.5) / SLOTS) / 1000.0
             for slot in range(SLOTS)]
    return [times[n % SLOTS] for n in range(count)]


def drive_classic(bots: list, seconds: float, frame_ms: tuple) -> None:
    """The client's loop: draw a frame, read the inputs, send, block for the reply. Each
    bot sends its next input its own frame time after its reply (`frame_ms` spreads them;
    (0, 0) sends at once)."""
    selector = selectors.DefaultSelector()
    for bot, frame in zip(bots, frame_times(len(bots), *frame_ms)):
        bot.frame = frame
        selector.register(bot.sock, selectors.EVENT_READ, bot)
        bot.send_input()
    due = []  # (when, n, bot): bots drawing their frame
    sequence = itertools.count()
    end = time.perf_counter() + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while due and due[0][0] <= now:
            heapq.heappop(due)[2].send_input()
        wait = min(end, due[0][0] if due else end) - now
        for selected, _ in selector.select(timeout=max(0.0, wait)):
            bot = selected.data
            if bot.replies_received(time.perf_counter()):
                if bot.frame:
                    heapq.heappush(due, (time.perf_counter() + bot.frame, next(sequence), bot))
                else:
                    bot.send_input()
    selector.close()
    drawing = {id(bot) for _, _, bot in due}
    for bot in bots:  # the replies still in flight (a bot drawing its frame awaits none)
        if id(bot) in drawing:
            continue
        bot.sock.setblocking(True)
        bot.sock.settimeout(1.0)
        try:
            while bot.take_reply() is None:
                bot.buf += bot.sock.recv(65536)
        except OSError:
            pass


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
        bot.side = bot.wait("game_state_1")["player_id"]
        bot.sock.setblocking(False)
    return bots


def drain(bots: list) -> None:
    """Read what the bots were sent before the measured run (kept out of states/s)."""
    for bot in bots:
        while bot.receive(count=False):
            pass


def drive(bots: list, seconds: float, input_hz: float) -> None:
    """Every bot sends `ingame` each round, holding a direction (toward the centre first)
    for HOLD_ROUNDS rounds and then reversing; bots are staggered so reversals spread.
    The latency of a reversal runs from its send to the first state that shows it."""
    selector = selectors.DefaultSelector()
    for bot in bots:
        selector.register(bot.sock, selectors.EVENT_READ, bot)
    encoded = {}
    for bot in bots:
        for keys in (["d"], ["a"]):
            encoded[bot.name, keys[0]] = json.dumps({
                "time": "2026-11-22T00:00:00", "sender": bot.name, "flag": "ingame",
                "data": [[640, 360], keys, "wsad"]}).encode() + b"\n"
    interval = 1.0 / input_hz
    # bots send in SLOTS groups spread over the interval: real clients' frames are not in
    # phase with the server's ticks (nor with each other)
    groups = [bots[slot::SLOTS] for slot in range(SLOTS)]
    start = time.perf_counter()
    next_send = [start + slot * interval / SLOTS for slot in range(SLOTS)]
    rounds = [0] * SLOTS
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for slot in range(SLOTS):
            if now < next_send[slot]:
                continue
            rounds[slot] += 1
            for n, bot in enumerate(groups[slot]):
                step = rounds[slot] + n
                toward_centre = (step // HOLD_ROUNDS) % 2 == 0
                key = "d" if toward_centre == (bot.side == 1) else "a"
                try:
                    bot.sock.send(encoded[bot.name, key])
                except BlockingIOError:
                    continue
                if (step + 1) % HOLD_ROUNDS == 0:  # the reversal comes next round
                    bot.watching, bot.last_x = True, None
                elif step % HOLD_ROUNDS == 0 and bot.watching:
                    if bot.pending is not None:
                        bot.unseen += 1
                    bot.pending = (time.perf_counter(), 1 if key == "d" else -1)
            next_send[slot] += interval
        wake = min(min(next_send), end)
        for selected, _ in selector.select(timeout=max(0.0, wake - time.perf_counter())):
            selected.data.receive()
    selector.close()


def histogram(http_port: int, name: str) -> dict:
    """{upper bound: cumulative count} of one /metrics histogram."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=5) as reply:
        text = reply.read().decode()
    found = re.findall(r'^%s_bucket\{le="([^"]+)"\} (\S+)$' % re.escape(name), text, re.M)
    return {float(bound): float(count) for bound, count in found}


def share_above(before: dict, after: dict, threshold: float) -> float:
    """The share of observations between two histogram readings above `threshold`
    (a bucket bound)."""
    total = after[float("inf")] - before[float("inf")]
    at_most = after[threshold] - before[threshold]
    return (total - at_most) / total if total else 0.0


def quantile_bound(before: dict, after: dict, q: float) -> float:
    """The smallest bucket bound holding at least q of the observations between readings."""
    total = after[float("inf")] - before[float("inf")]
    for bound in sorted(after):
        if after[bound] - before[bound] >= q * total:
            return bound
    return float("inf")


def percentile(values: list, q: float) -> float:
    return values[int(q * (len(values) - 1))] * 1000 if values else float("nan")


def measure_reference(ref, matches: int, run: int, args) -> dict:
    proc, port = ref
    bots = set_up(port, matches, run)
    time.sleep(0.5)
    drain(bots)
    for bot in bots:
        bot.states = 0
    ticks0, late0 = reference_stats(port)
    cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
    own0 = time.process_time()
    drive(bots, args.seconds, args.input_hz)
    wall = time.perf_counter() - wall0
    ticks, late = reference_stats(port)
    row = {"matches": matches, "late": (late - late0) / (ticks - ticks0) if ticks > ticks0
           else 1.0, "over_4ms": float("nan"), "work_p99": float("nan"),
           "states": sum(bot.states for bot in bots) / wall,
           "cpu": (cpu_seconds(proc.pid) - cpu0) / wall,
           "bots_cpu": (time.process_time() - own0) / wall,
           "p50": float("nan"), "p99": float("nan"), "samples": 0, "unseen": 0}
    for bot in bots:
        bot.sock.close()
    time.sleep(1.0)
    return row


def measure(proc, ports, matches: int, run: int, args, wire: str = "lines") -> dict:
    if wire == "reference":
        return measure_reference(ports["reference"], matches, run, args)
    if wire == "classic":
        bots = set_up_classic(ports["classic"], matches, run)
    else:
        bots = set_up(ports["novaglide"], matches, run)
    time.sleep(0.5)
    http = ports["http"]
    ticks0 = metric(http, "gamed_novaglide_ticks_total")
    late0 = metric(http, "gamed_novaglide_late_ticks_total")
    lateness0 = histogram(http, "gamed_novaglide_tick_lateness_seconds")
    work0 = histogram(http, "gamed_novaglide_tick_seconds")
    if wire == "lines":
        drain(bots)
    for bot in bots:
        bot.states = 0
    cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
    own0 = time.process_time()
    if wire == "classic":
        drive_classic(bots, args.seconds, args.frame_ms)
    else:
        drive(bots, args.seconds, args.input_hz)
    wall = time.perf_counter() - wall0
    ticks = metric(http, "gamed_novaglide_ticks_total") - ticks0
    late = metric(http, "gamed_novaglide_late_ticks_total") - late0
    latencies = sorted(lat for bot in bots for lat in bot.latencies)
    row = {
        "matches": matches, "late": late / ticks if ticks else 1.0,
        "over_4ms": share_above(lateness0, histogram(http, "gamed_novaglide_tick_lateness_seconds"),
                                0.004),
        "work_p99": quantile_bound(work0, histogram(http, "gamed_novaglide_tick_seconds"), 0.99),
        "states": sum(bot.states for bot in bots) / wall,
        "cpu": (cpu_seconds(proc.pid) - cpu0) / wall,
        "bots_cpu": (time.process_time() - own0) / wall,
        "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
        "samples": len(latencies), "unseen": sum(bot.unseen for bot in bots),
    }
    for bot in bots:
        bot.sock.close()
    time.sleep(1.0)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", default="50,100,150,200,250,300")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--input-hz", type=float, default=60.0)
    parser.add_argument("--frame-ms", default="1,12",
                        type=lambda text: tuple(float(v) for v in text.split(",")),
                        help="classic bots: the spread LOW,HIGH of their frame time (the "
                             "client draws a frame between a reply and its next request); "
                             "0,0 sends at once")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure each N this many times; N holds if the median round "
                             "has < 1%% late ticks")
    parser.add_argument("--no-reference", action="store_true",
                        help="gamed alone (no ratio: a figure without its reference)")
    parser.add_argument("--serve-reference", nargs=2, metavar=("TEMPLATE", "PORTFILE"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--wire", choices=("lines", "classic"), default="lines",
                        help="classic: the original client's pickle lockstep, with JSON lines "
                             "interleaved as the same-run reference")
    args = parser.parse_args(argv)
    if args.serve_reference:
        serve_reference(*args.serve_reference)
        return
    wires = ("lines", "classic") if args.wire == "classic" else ("lines",)
    if not args.no_reference:
        wires = ("reference",) + wires
    tmp = tempfile.mkdtemp(prefix="gamed-bench-novaglide-")
    proc, ports = start(tmp)
    ref_proc = None
    if not args.no_reference:
        ref_proc, ref_port = start_reference(gamed_state(ports["novaglide"]))
        ports["reference"] = (ref_proc, ref_port)
    print("novaglide: %s s per step, bots send input at %g Hz (classic: in lockstep, a frame "
          "of %g-%g ms between reply and request), %d round(s), %d cores, %s"
          % (args.seconds, args.input_hz, args.frame_ms[0], args.frame_ms[1], args.rounds,
             os.cpu_count(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("late = ticks that missed a frame; >4ms = ticks started over 4 ms after schedule;"
          " tick p99 = bucket bound of the tick's own work (budget 16.7 ms);"
          " input->state = a reversal's send to the first state showing it")
    print("%7s %7s %7s %7s %7s %8s %9s %7s %7s %15s %7s" % (
        "wire", "matches", "players", "late", ">4ms", "tick p99", "states/s", "daemon", "bots",
        "in->state p50/99", "unseen"))
    best = dict.fromkeys(wires, 0)
    cost = {}  # (N, wire) -> the server's CPU seconds per state sent, each round
    holding = set(wires)
    run = 0
    try:
        for matches in (int(n) for n in args.matches.split(",")):
            lates = {wire: [] for wire in holding}
            for round_ in range(args.rounds):
                order = sorted(holding, key=wires.index)  # interleaved, alternating order
                for wire in (order if round_ % 2 == 0 else order[::-1]):
                    wait_for_quiet()
                    row = measure(proc, ports, matches, run, args, wire)
                    run += 1
                    print("%7s %7d %7d %6.2f%% %6.2f%% %5.1f ms %9.0f %6.0f%% %6.0f%% "
                          "%6.1f/%5.1f ms %7d" % (
                              wire, matches, 2 * matches, 100 * row["late"],
                              100 * row["over_4ms"], 1000 * row["work_p99"], row["states"],
                              100 * row["cpu"], 100 * row["bots_cpu"], row["p50"], row["p99"],
                              row["unseen"]), flush=True)
                    lates[wire].append(row["late"])
                    if row["states"]:
                        cost.setdefault((matches, wire), []).append(row["cpu"] / row["states"])
            for wire, shares in lates.items():
                # the median round: one round hit by a neighbour's burst does not decide
                if median(shares) < 0.01:
                    best[wire] = matches
                else:
                    holding.discard(wire)
            if not holding:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if ref_proc is not None:
            ref_proc.terminate()
            ref_proc.wait(timeout=30)
    for wire in wires:
        print("%s: largest N with < 1%% late ticks: %d matches (%d players)%s"
              % (wire, best[wire], 2 * best[wire],
                 "; still held at the largest N tried: raise --matches" if wire in holding else ""))
    # CPU per state sent (per player-frame): what each server spends, whatever the host's
    # load lets it hold
    for matches in sorted({n for n, _ in cost}):
        per_state = {wire: median(cost[matches, wire]) for wire in wires
                     if (matches, wire) in cost}
        ratios = ["%s / %s %.2f" % (one, two, per_state[one] / per_state[two])
                  for one, two in (("lines", "reference"), ("classic", "lines"))
                  if one in per_state and two in per_state]
        print("%d matches: CPU per 1000 states: %s%s"
              % (matches, ", ".join("%s %.2f ms" % (wire, 1e6 * per_state[wire])
                                    for wire in wires if wire in per_state),
                 " (%s)" % ", ".join(ratios) if ratios else ""))
    if "reference" in wires:
        ratio = best["lines"] / best["reference"] if best["reference"] else float("nan")
        print("gamed (lines) / reference = %.2f (goal >= 0.60: %s)"
              % (ratio, "met" if ratio >= 0.6 else "NOT met"))
    if "classic" in wires:
        ratio = best["classic"] / best["lines"] if best["lines"] else float("nan")
        print("classic / lines = %.2f (goal >= 0.70: %s)%s"
              % (ratio, "met" if ratio >= 0.7 else "NOT met",
                 "; both held the largest N tried: raise --matches"
                 if {"lines", "classic"} <= holding else ""))


if __name__ == "__main__":
    main()
