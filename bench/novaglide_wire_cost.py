"""What one player-frame costs gamed on each novaglide wire, in process, without sockets.

    python bench/novaglide_wire_cost.py [--matches 10] [--frames 300] [--rounds 3]
    python bench/novaglide_wire_cost.py --callgrind [--matches 10] [--frames 200]

A player-frame is one `ingame` request handled plus one `game_state_1` sent, with the
tick that steps the matches: what a match costs per player and 1/60 s. Both wires run the
daemon's own code (a real core on SQLite, a fake 60 Hz clock, `StringTransport`s): the
JSON-lines protocol with the client's input line, and the classic protocol with the
original client's pickled `ingame` request (pygame's 512 key bools, the account id as
sender) in its lockstep (each answered at the next tick). What the kernel and the reactor
add per player-frame (one recv, one send, the polling) is the same on both wires and
left out, so the ratio here is the wires' own difference.

By default: CPU seconds per player-frame (`time.process_time`), the wires alternating
`--rounds` times, medians. `--callgrind` runs each wire under
`valgrind --tool=callgrind` with instrumentation on for the frames only and prints
instructions per player-frame: the same on a loaded machine as on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


async def measure(wire: str, matches: int, frames: int, toggle: bool) -> float:
    """Seconds of CPU per player-frame (instrumented frames only, with `toggle`)."""
    from twisted.internet import reactor, task
    from twisted.internet.testing import StringTransport

    from gamed.core.config import set_option
    from gamed.core.lines import JsonLinesFactory
    from gamed.core.metrics import Metrics
    from gamed.core.runtime import build_core
    from gamed.core.testing import make_test_config
    from gamed.core.transport import StreamEndpoint
    from gamed.novaglide.classic import ClassicConnection, ClassicProtocol
    from gamed.novaglide.rules import DT
    from gamed.novaglide.service import NovaConnection, NovaglideGame
    from gamed.store.database import Database, run_blocking
    from gamed.store.engines import create_engine
    from gamed.store.migrations import migrate
    from tests.novaglide.classic_client import pressed, request, scancode_wrapper_registered

    async def until(predicate):
        while not predicate():
            await task.deferLater(reactor, 0.002, lambda: None)

    url = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="gamed-wire-cost-"), "db")
    run_blocking(create_engine(url), migrate)
    metrics = Metrics()
    database = Database(url, pool_size=3, metrics=metrics, reactor=reactor)
    database.start()
    core = build_core(reactor, make_test_config(), database, metrics, random.Random(1))
    core.accounts.startService()
    for key, value in (("rate", 1000.0), ("burst", 2000)):
        core.config = set_option(core.config, "novaglide", key, value)
    clock = task.Clock()
    game = NovaglideGame(core, clock)
    game.startService()
    stats = metrics.service("novaglide")
    if wire == "classic":
        endpoint = StreamEndpoint("novaglide", "classic", lambda: ClassicConnection(game),
                                  game.settings, clock, stats)
        make = lambda: ClassicProtocol(endpoint, 4096)  # noqa: E731
    else:
        endpoint = StreamEndpoint("novaglide", "lines", lambda: NovaConnection(game),
                                  game.settings, clock, stats)
        make = lambda: JsonLinesFactory(endpoint).buildProtocol(None)  # noqa: E731

    def encoded(flag, data, sender):
        if wire == "classic":
            return request(flag, data, sender)
        return json.dumps({"time": "2026-12-02T00:00:00", "sender": "x", "flag": flag,
                           "data": data}).encode() + b"\n"

    peers = []
    for n in range(2 * matches):
        proto, transport = make(), StringTransport()
        proto.makeConnection(transport)
        handler = proto.connection.handler
        proto.dataReceived(encoded("log_in_data", ["p%d" % n, "pw"], "uknown"))
        await until(lambda: handler.account is not None)
        proto.dataReceived(encoded("queued_solo", ["no_data"], handler.account.id))
        await until(lambda: handler.account.id in game.queue.entries
                    or handler.account.id in game.match_of)
        peers.append((proto, transport))
    await until(lambda: len(game.matches) == matches)
    with scancode_wrapper_registered() as wrapper:
        inputs = [encoded("ingame", [(640, 360), pressed(wrapper, "d"), "wsad"]
                          if wire == "classic" else [[640, 360], ["d"], "wsad"],
                          proto.connection.handler.account.id) for proto, _ in peers]

    def next_tick():
        due = game.frames_due
        while game.frames_due == due:
            clock.advance(DT / 4)

    next_tick()
    for _, transport in peers:
        transport.clear()
    if toggle:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                       capture_output=True)
    started = time.process_time()
    for _ in range(frames):
        for (proto, _), payload in zip(peers, inputs):
            proto.dataReceived(payload)
        next_tick()
        for _, transport in peers:
            if not transport.value():
                raise RuntimeError("a player got no state")
            transport.clear()
    spent = time.process_time() - started
    if toggle:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True,
                       capture_output=True)
    game.stopService()
    core.accounts.stopService()
    database.close()
    return spent / (frames * 2 * matches)


def run_here(args, report) -> None:
    """Measure in this process (the wires alternating, round by round), then
    `report({wire: [seconds per player-frame, ...]})`; the reactor's end exits."""
    from twisted.internet import defer, task

    async def main(_reactor):
        results = {wire: [] for wire in args.wires}
        for round_ in range(args.rounds):
            order = args.wires if round_ % 2 == 0 else args.wires[::-1]
            for wire in order:
                results[wire].append(await measure(wire, args.matches, args.frames,
                                                   args.toggle))
        report(results)

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))


def print_cpu(args, results: dict) -> None:
    per = {wire: statistics.median(values) for wire, values in results.items()}
    for wire in args.wires:
        print("%-8s %6.1f us CPU per player-frame (rounds: %s)"
              % (wire, 1e6 * per[wire], ", ".join("%.1f" % (1e6 * v) for v in results[wire])))
    if {"lines", "classic"} <= set(per):
        print("classic / lines = %.2f" % (per["classic"] / per["lines"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per player-frame, each wire under callgrind")
    parser.add_argument("--wires", nargs="+", default=["lines", "classic"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--toggle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.toggle:  # one wire under callgrind, started below
        run_here(args, lambda results: None)
        return
    if not args.callgrind:
        print("novaglide wire cost: %d matches (%d players), %d frames, %d round(s), %s"
              % (args.matches, 2 * args.matches, args.frames, args.rounds,
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), flush=True)
        run_here(args, lambda results: print_cpu(args, results))
        return
    print("novaglide wire cost under callgrind: %d matches (%d players), %d frames, %s"
          % (args.matches, 2 * args.matches, args.frames,
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), flush=True)
    instructions = {}
    for wire in args.wires:
        out = tempfile.mktemp(prefix="gamed-wire-cost-callgrind-")
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             "--callgrind-out-file=" + out, sys.executable, os.path.abspath(__file__),
             "--toggle", "--rounds", "1", "--matches", str(args.matches),
             "--frames", str(args.frames), "--wires", wire], capture_output=True, text=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if not found:
            raise SystemExit("callgrind run of %s failed:\n%s" % (wire, done.stderr[-2000:]))
        instructions[wire] = int(found.group(1)) / (args.frames * 2 * args.matches)
        if os.path.exists(out):
            os.unlink(out)
        print("%-8s %8.0f instructions per player-frame" % (wire, instructions[wire]),
              flush=True)
    if {"lines", "classic"} <= set(instructions):
        print("classic / lines = %.2f" % (instructions["classic"] / instructions["lines"]))


if __name__ == "__main__":
    main()
