"""Login throughput at bcrypt cost 12: the real login path against raw bcrypt.checkpw.

    python bench/login.py [--cost 12] [--logins 120] [--threads 2] [--rounds 3]

Measures in one run: (1) raw `bcrypt.checkpw` calls/s on `--threads` threads (the
ceiling), (2) logins/s through `AccountService.login` (throttle checks, the database
lookup on the adbapi pool, bcrypt on the bounded pool) on a fresh SQLite database, and
(3) the reactor's responsiveness during the storm: the p99 lateness of a 10 ms LoopingCall.
(1) and (2) alternate `--rounds` times, each after a wait for a quiet machine (the service
runs in a forked process each time: a reactor runs once per process); medians compared.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bcrypt  # noqa: E402


def raw_rate(cost: int, count: int, threads: int) -> float:
    hashed = bcrypt.hashpw(b"benchmark password", bcrypt.gensalt(cost))
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: bcrypt.checkpw(b"benchmark password", hashed), range(count)))
    return count / (time.perf_counter() - started)


def service_rate(cost: int, count: int, threads: int, in_flight: int):
    from twisted.internet import defer, reactor, task

    from gamed.core.metrics import Metrics
    from gamed.core.runtime import build_core
    from gamed.core.testing import make_test_config
    from gamed.store.database import Database, run_blocking
    from gamed.store.engines import create_engine
    from gamed.store.migrations import migrate

    tmp = tempfile.mkdtemp(prefix="gamed-bench-login-")
    url = "sqlite:///" + os.path.join(tmp, "bench.sqlite3")
    run_blocking(create_engine(url), migrate)
    config = make_test_config({("accounts", "bcrypt_cost"): cost,
                                 ("accounts", "bcrypt_threads"): threads,
                                 ("accounts", "address_burst"): 10 ** 9,
                                 ("accounts", "account_burst"): 10 ** 9})
    metrics = Metrics()
    database = Database(url, metrics=metrics)
    core = build_core(reactor, config, database, metrics, random.Random(1))
    result = {}

    @defer.inlineCallbacks
    def run():
        database.start()
        core.accounts.startService()
        yield core.accounts.register("bench", "benchmark password", "127.0.0.1:1")
        lateness = []
        expected = [time.perf_counter()]

        def tick():
            now = time.perf_counter()
            lateness.append(max(0.0, now - expected[0]))
            expected[0] = now + 0.010

        ticker = task.LoopingCall(tick)
        ticker.start(0.010)
        semaphore = defer.DeferredSemaphore(in_flight)
        started = time.perf_counter()
        yield defer.gatherResults([
            semaphore.run(core.accounts.login, "bench", "benchmark password",
                          "10.0.%d.%d:1" % (i // 250, i % 250))
            for i in range(count)])
        elapsed = time.perf_counter() - started
        ticker.stop()
        result["rate"] = count / elapsed
        lateness.sort()
        result["p99_ms"] = 1000 * lateness[int(0.99 * (len(lateness) - 1))]
        result["median_ms"] = 1000 * statistics.median(lateness)
        yield core.accounts.stopService()
        database.close()

    def main():
        run().addErrback(lambda f: f.printTraceback()).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(main)
    reactor.run()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--logins", type=int, default=120)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from support import interleaved, median

    print("bcrypt cost %d, %d threads, %d logins, %d rounds, %d cores, %s"
          % (args.cost, args.threads, args.logins, args.rounds, os.cpu_count(),
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))

    def service():
        import multiprocessing

        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=lambda: queue.put(service_rate(
            args.cost, args.logins, args.threads, args.in_flight)))
        child.start()
        result = queue.get(timeout=600)
        child.join()
        return {key: round(value, 2) for key, value in result.items()}

    runs = interleaved(args.rounds, [
        ("raw bcrypt.checkpw", lambda: round(raw_rate(args.cost, args.logins, args.threads), 2)),
        ("AccountService.login", service)], report=lambda line: print(line, flush=True))
    raw = median(runs["raw bcrypt.checkpw"])
    rate = median([r["rate"] for r in runs["AccountService.login"]])
    print("medians: raw bcrypt.checkpw %.1f calls/s; AccountService.login %.1f logins/s "
          "(%.2f of raw)" % (raw, rate, rate / raw))
    print("reactor 10 ms LoopingCall during the logins: p99 lateness %.2f ms, median %.2f ms"
          % (median([r["p99_ms"] for r in runs["AccountService.login"]]),
             median([r["median_ms"] for r in runs["AccountService.login"]])))


if __name__ == "__main__":
    main()
