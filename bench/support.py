"""What the benchmarks share: free ports and starting the real daemon on a config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
# every listener off: a benchmark turns on the one it measures (plus HTTP for /metrics)
ALL_OFF = {"novaglide": {"listen": '""'}, "blockattack": {"listen": '""'},
           "uttt": {"websocket": '""', "listen": '""'},
           "rooms": {"websocket": '""', "listen": '""'}}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def start_daemon(tmp: str, sections: dict, ready_port: int) -> subprocess.Popen:
    """twistd gamed on SQLite in tmp with `sections` ({section: {key: TOML value}}) over
    the defaults (bcrypt cost 4, quiet logs, every listener off); returns once
    `ready_port` accepts. GAMED_BENCH_TWISTD_ARGS adds twistd options (e.g. --profile=F)."""
    config = {"database": {"url": '"sqlite:///%s/bench.sqlite3"' % tmp},
              "accounts": {"bcrypt_cost": "4"}, "logging": {"level": '"warn"'}}
    for section, keys in list(ALL_OFF.items()) + list(sections.items()):
        config.setdefault(section, {}).update(keys)
    path = os.path.join(tmp, "gamed.toml")
    with open(path, "w") as handle:
        for section, keys in config.items():
            handle.write("[%s]\n" % section)
            handle.writelines("%s = %s\n" % item for item in keys.items())
    return launch(tmp, path, ready_port)


def launch(tmp: str, config_path: str, ready_port: int, timeout: float = 30.0):
    """`twistd -n gamed --config CONFIG_PATH` in tmp (log: tmp/gamed.log); returns once
    `ready_port` accepts. GAMED_BENCH_TWISTD_ARGS adds twistd options (e.g. --profile=F)."""
    log = open(os.path.join(tmp, "gamed.log"), "w")
    extra = os.environ.get("GAMED_BENCH_TWISTD_ARGS", "").split()
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", *extra, "gamed", "--config",
                             config_path], cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gamed exited; see %s" % log.name)
        try:
            socket.create_connection(("127.0.0.1", ready_port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("gamed did not listen on port %d within %g s; see %s"
                     % (ready_port, timeout, log.name))


def listen(port: int, kind: str = "tcp") -> str:
    return '"%s:%d:interface=127.0.0.1"' % (kind, port)


def start_reference_server(script: str, kind: str):
    """Run `python SCRIPT --serve KIND PORTFILE` (a benchmark's own reference server) and
    return (process, the port it wrote to PORTFILE)."""
    import tempfile

    port_file = tempfile.mktemp(prefix="gamed-bench-port-")
    proc = subprocess.Popen([sys.executable, script, "--serve", kind, port_file])
    for _ in range(200):
        if os.path.exists(port_file):
            with open(port_file) as handle:
                text = handle.read()
            if text:
                return proc, int(text)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("%s reference server %r did not start" % (script, kind))


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- same-run comparison: interleaved rounds, a quiet machine before each, medians -----------

def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of the machine's CPU time (all cores) spent busy over `seconds`."""
    def sample():
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total > 0 else 0.0


def wait_for_quiet(busy_below: float = 0.25, max_wait: float = 30.0) -> float:
    """Wait until the machine's CPU was less than `busy_below` busy for a second, at most
    `max_wait` s (then go on: a benchmark on a busy machine still compares its reference
    and gamed in the same conditions). Returns the last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = cpu_busy(1.0)
        if busy < busy_below or time.monotonic() >= deadline:
            return busy


def median(values):
    import statistics

    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def interleaved(rounds: int, contenders: list, quiet: dict | None = None,
                report=print) -> dict:
    """Run each (label, measure) of `contenders` once per round, alternating their order
    from round to round, after a wait for a quiet machine; returns {label: [results]}."""
    results = {label: [] for label, _ in contenders}
    for round_ in range(rounds):
        order = contenders if round_ % 2 == 0 else contenders[::-1]
        for label, measure in order:
            busy = wait_for_quiet(**(quiet or {}))
            result = measure()
            results[label].append(result)
            report("  round %d %-24s (cpu %3.0f%% busy before) %s"
                   % (round_ + 1, label, 100 * busy, result))
    return results
