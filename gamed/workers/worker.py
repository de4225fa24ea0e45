"""One worker of a server with `[server] workers` > 1: `python -m gamed.workers.worker SPEC`.

Started by the supervisor (gamed/workers/supervisor.py) with SPEC, a JSON object: its
index and node name, every worker's node name, the command line's options (the same
config as the supervisor's), its metrics directory and the listeners it shares. It is a
whole gamed -- the same service tree as a lone process, a node of the cluster named
`<node_name>-w<i>` -- except that it listens on the supervisor's sockets, says READY=1
and STOPPING=1 to the supervisor instead of systemd, and drains and exits when SIGTERM
arrives or the supervisor is gone.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
from typing import Callable

from twisted.internet import protocol
from twisted.logger import Logger, globalLogBeginner

from gamed.workers.supervisor import CONTROL_FD

log = Logger(namespace="gamed.workers")


class ToSupervisor(protocol.Protocol):
    """The worker's end of its socket pair: states out; the supervisor's end closing
    means it is gone (killed): drain and exit rather than serve unsupervised."""

    #: what the supervisor tells, a line each: `ENDED <name>` (that worker's process ended)
    MAX_LINE = 1024

    def __init__(self, reactor, stop):
        self.reactor = reactor
        self.stop = stop
        self.buffer = b""
        self.worker_ended: Callable[[str], object] = lambda name: None

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > self.MAX_LINE:
            log.warn("worker: a line from the supervisor was too long; dropped")
            self.buffer = b""
        for line in lines:
            verb, _, name = line.decode("ascii", "replace").partition(" ")
            if verb == "ENDED" and name:
                self.worker_ended(name)

    def notify(self, state: str, environ=None) -> bool:
        if self.transport is None:
            return False
        self.transport.write(state.splitlines()[0].encode("ascii") + b"\n")
        return False  # nothing to log: "told systemd" is the supervisor's line

    def connectionLost(self, reason):
        if self.reactor.running:
            log.warn("worker: the supervisor is gone")
            self.stop()


class ToSupervisorFactory(protocol.Factory):
    def __init__(self, link):
        self.link = link

    def buildProtocol(self, addr):
        return self.link


def worker_observer(config, node: str):
    """The config's log observer, each event marked with the worker's name."""
    from gamed.core.logs import make_observer

    observer = make_observer(config.logging.format, config.logging.level)

    def marked(event):
        event["worker"] = node
        if config.logging.format != "json" and "log_system" not in event:
            level = event.get("log_level")
            event["log_system"] = "%s %s#%s" % (node, event.get("log_namespace", "-"),
                                                level.name if level is not None else "info")
        observer(event)

    return marked


def run(spec: dict) -> None:
    from twisted.internet import reactor

    from gamed.core.config import ConfigError, set_option
    from gamed.tap import Options, build_services, make_core, options_to_config
    from gamed.workers.handoff import Handoff
    from gamed.workers.metrics import WorkerMetrics
    from gamed.workers.sockets import SharedSocket

    options = Options()
    options.update(spec["options"])
    try:
        config = options_to_config(options)
    except ConfigError as exc:
        sys.stderr.write("gamed worker %s: %s\n" % (spec["node"], exc))
        raise SystemExit(1)
    config = set_option(config, "cluster", "node_name", spec["node"])
    shared_sockets = [SharedSocket(**shared) for shared in spec["sockets"]]
    for shared in shared_sockets:  # "tcp:0" as bound: each listen value names one socket
        config = set_option(config, shared.section, shared.key, shared.description)
    globalLogBeginner.beginLoggingTo([worker_observer(config, spec["node"])],
                                     redirectStandardIO=False)
    stop = Stopper(reactor)
    link = ToSupervisor(reactor, stop)
    reactor.adoptStreamConnection(CONTROL_FD, socket.AF_UNIX, ToSupervisorFactory(link))
    metrics = WorkerMetrics(spec["node"], spec["run_dir"], reactor)
    core = make_core(reactor, config, metrics)
    core.workers = tuple(spec["nodes"])
    core.shared_sockets = {shared.description: shared for shared in shared_sockets}
    core.handoff = Handoff(reactor, spec["node"], spec["nodes"], spec["run_dir"])
    ended = getattr(core.cluster, "node_ended", None)
    if ended is not None:
        link.worker_ended = ended
    top = build_services(core, notify=link.notify)
    metrics.snapshot_service().setServiceParent(top)
    core.handoff.service().setServiceParent(top)
    top.privilegedStartService()
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: reactor.callFromThread(stop))
    reactor.run(installSignalHandlers=False)


class Stopper:
    """Drains the worker, once: under systemd (KillMode=control-group) or a terminal's
    Ctrl-C a worker gets SIGTERM itself and again from its supervisor, and a second
    reactor.stop() is an error."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.stopping = False

    def __call__(self) -> None:
        if not self.stopping and self.reactor.running:
            self.stopping = True
            log.info("worker: stopping")
            self.reactor.stop()


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
