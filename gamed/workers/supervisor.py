"""`twistd gamed` with `[server] workers` > 1: the supervisor of N worker processes.

It binds every listener once (or takes them from systemd), starts N workers
(`python -m gamed.workers.worker`) that adopt those sockets, tells systemd READY=1 once
every worker listens, forwards SIGTERM so that they drain as one server does, and starts
again a worker that died (after 0.5 s, doubling up to 30 s while it keeps dying young).
It serves no player itself and opens neither the database pool nor Redis: the workers
are nodes of the cluster (`[cluster]`), named `<node_name>-w<i>`.

Each worker talks to the supervisor over a socket pair (its descriptor 3): one line per
state ("READY=1", "STOPPING=1"); the worker stops when the supervisor is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Optional

import attrs
from twisted.application import service
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from gamed.cluster.settings import default_node_name
from gamed.core.systemd import sd_notify
from gamed.workers.sockets import SharedSocket, as_bound, bind_udp, family_of, listen_stream

log = Logger(namespace="gamed.workers")

#: the worker's descriptor of its socket pair to the supervisor
CONTROL_FD = 3
#: the worker's descriptors of the stream listeners start here
FIRST_LISTENER_FD = 4
RESTART_FIRST = 0.5
RESTART_MAX = 30.0
#: a worker that lived this long had a normal life: the next restart waits RESTART_FIRST
HEALTHY_LIFE = 30.0
#: what systemd and the supervisor's own environment hand over but a worker must not use
PRIVATE_ENVIRONMENT = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                       "WATCHDOG_USEC", "WATCHDOG_PID")


def worker_names(config, count: int) -> list[str]:
    base = config.cluster.node_name or default_node_name(config.http.listen)
    return ["%s-w%d" % (base, index) for index in range(count)]


class ControlLine(LineOnlyReceiver):
    """The supervisor's end of one worker's socket pair."""

    delimiter = b"\n"

    def __init__(self, worker: "Worker"):
        self.worker = worker

    def connectionMade(self):
        self.worker.control = self

    def lineReceived(self, line: bytes) -> None:
        self.worker.state(line.decode("ascii", "replace").strip())

    def tell(self, line: str) -> None:
        """A line to the worker (`ENDED <name>`: another worker's process ended)."""
        if self.transport is not None and self.connected:
            self.sendLine(line.encode("ascii"))


class ControlFactory(protocol.Factory):
    def __init__(self, worker):
        self.worker = worker

    def buildProtocol(self, addr):
        return ControlLine(self.worker)


@attrs.define(eq=False)
class Worker:
    """One worker slot: its process now (None between a death and the restart)."""

    supervisor: "Supervisor"
    index: int
    name: str
    process: object = None
    pid: Optional[int] = None
    started_at: float = 0.0
    ready: bool = False
    failures: int = 0  # deaths in a row of a worker that lived less than HEALTHY_LIFE
    restart_call: object = None
    ended: Optional[defer.Deferred] = None
    control: Optional[ControlLine] = None  # the supervisor's end of its socket pair

    def state(self, line: str) -> None:
        if line == "READY=1" and not self.ready:
            self.ready = True
            self.supervisor.worker_ready(self)


class WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, worker: Worker):
        self.worker = worker

    def processEnded(self, reason):
        self.worker.supervisor.worker_ended(self.worker, reason.value)


class Supervisor(service.Service):
    """Binds the listeners, runs the workers, restarts the dead ones; drains them all."""

    name = "supervisor"

    def __init__(self, reactor, config, worker_options: dict, count: int, environ=None):
        self.reactor = reactor
        self.config = config
        self.worker_options = worker_options  # the command line's options, for each worker
        self.environ = os.environ if environ is None else environ
        self.names = worker_names(config, count)
        self.workers = [Worker(self, index, name) for index, name in enumerate(self.names)]
        self.stream_ports: list = []  # (description, port) bound here
        self.udp_sockets: list = []  # (description, socket) holding the port until ready
        self.shared: list[SharedSocket] = []
        self.run_dir = ""
        self.stopping = False
        self.all_ready = False

    # -- start ---------------------------------------------------------------------------

    def privilegedStartService(self):
        from gamed.games import LISTENER_KEYS

        for section, key in LISTENER_KEYS:
            description = getattr(getattr(self.config, section), key)
            if not description:
                continue
            if type(getattr(self.config, section)).LISTENERS[key] == "udp":
                sock = bind_udp(description)
                self.udp_sockets.append((description, sock))
                bound = sock.getsockname()[1]
                self.shared.append(SharedSocket(
                    section, key, as_bound(description, bound), "udp",
                    "INET6" if sock.family == socket.AF_INET6 else "INET", port=bound))
            else:
                port = listen_stream(self.reactor, description)
                self.stream_ports.append((description, port))
                self.shared.append(SharedSocket(
                    section, key, as_bound(description, getattr(port.getHost(), "port", 0)),
                    "stream", family_of(port),
                    fd=FIRST_LISTENER_FD + len(self.stream_ports) - 1))
        service.Service.privilegedStartService(self)

    def startService(self):
        if not self.stream_ports and not self.udp_sockets:
            self.privilegedStartService()
        service.Service.startService(self)
        # the workers' latest metrics (gamed/workers/metrics.py) and the Unix sockets they
        # hand connections over on (gamed/workers/handoff.py)
        self.run_dir = tempfile.mkdtemp(prefix="gamed-workers-")
        log.info("supervisor: starting {count} workers ({names})", count=len(self.workers),
                 names=", ".join(self.names))
        for worker in self.workers:
            self.spawn(worker)

    def spec(self, worker: Worker) -> dict:
        return {"index": worker.index, "node": worker.name, "nodes": self.names,
                "options": self.worker_options, "run_dir": self.run_dir,
                "sockets": [attrs.asdict(shared) for shared in self.shared]}

    def spawn(self, worker: Worker) -> None:
        worker.restart_call = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_fds = {0: "w", 1: 1, 2: 2, CONTROL_FD: theirs.fileno()}
        for offset, (_, port) in enumerate(self.stream_ports):
            child_fds[FIRST_LISTENER_FD + offset] = port.fileno()
        environ = {k: v for k, v in self.environ.items() if k not in PRIVATE_ENVIRONMENT}
        try:
            worker.process = self.reactor.spawnProcess(
                WorkerProcess(worker), sys.executable,
                [sys.executable, "-m", "gamed.workers.worker", json.dumps(self.spec(worker))],
                env=environ, childFDs=child_fds)
        finally:
            theirs.close()
        worker.pid = worker.process.pid
        worker.started_at = self.reactor.seconds()
        worker.ready = False
        worker.ended = defer.Deferred()
        self.reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX,
                                           ControlFactory(worker))
        ours.close()
        log.info("supervisor: worker {name} started (pid {pid})", name=worker.name,
                 pid=worker.process.pid)

    def worker_ready(self, worker: Worker) -> None:
        log.info("supervisor: worker {name} listening", name=worker.name)
        if self.all_ready or not all(w.ready for w in self.workers):
            return
        self.all_ready = True
        for _, sock in self.udp_sockets:  # the workers hold the UDP port now
            sock.close()
        self.udp_sockets = []
        if sd_notify("READY=1\nSTATUS=gamed is serving with %d workers" % len(self.workers),
                     self.environ):
            log.info("told systemd READY=1")
        log.info("supervisor: all {count} workers are listening", count=len(self.workers))

    # -- deaths and restarts -------------------------------------------------------------

    def worker_ended(self, worker: Worker, status) -> None:
        pid = worker.pid
        worker.process = None
        ended, worker.ended = worker.ended, None
        if ended is not None:
            ended.callback(None)
        if self.stopping:
            log.info("supervisor: worker {name} (pid {pid}) stopped", name=worker.name,
                     pid=pid)
            return
        for other in self.workers:  # they bury it now, not after the heartbeat timeout
            if other is not worker and other.process is not None and other.control:
                other.control.tell("ENDED %s" % worker.name)
        lived = self.reactor.seconds() - worker.started_at
        worker.failures = worker.failures + 1 if lived < HEALTHY_LIFE else 0
        delay = min(RESTART_FIRST * 2 ** max(worker.failures - 1, 0), RESTART_MAX)
        log.warn("supervisor: worker {name} (pid {pid}) died ({status}) after {lived:.1f} s; "
                 "starting it again in {delay} s", name=worker.name, pid=pid,
                 status=describe_status(status), lived=lived, delay=delay)
        worker.restart_call = self.reactor.callLater(delay, self.spawn, worker)

    # -- stop ----------------------------------------------------------------------------

    def stopService(self):
        """SIGTERM every worker (each drains as a lone gamed does) and wait for all."""
        service.Service.stopService(self)
        self.stopping = True
        sd_notify("STOPPING=1\nSTATUS=gamed is draining", self.environ)
        waits = []
        for worker in self.workers:
            if worker.restart_call is not None and worker.restart_call.active():
                worker.restart_call.cancel()
            if worker.process is not None and worker.ended is not None:
                waits.append(worker.ended)
                self._signal(worker, signal.SIGTERM)
        log.info("supervisor: draining {count} workers", count=len(waits))
        d = defer.DeferredList(waits)
        grace = self.config.shutdown.grace_period + 15
        d.addTimeout(grace, self.reactor, onTimeoutCancel=lambda *_: self._kill_all())
        d.addBoth(self._stopped)
        return d

    def _kill_all(self):
        for worker in self.workers:
            if worker.process is not None:
                log.warn("supervisor: worker {name} did not stop in time: SIGKILL",
                         name=worker.name)
                self._signal(worker, signal.SIGKILL)

    def _signal(self, worker: Worker, signum) -> None:
        try:
            worker.process.signalProcess(signum)
        except Exception:  # ended meanwhile
            pass

    def _stopped(self, result):
        for _, port in self.stream_ports:
            port.stopListening()
        for _, sock in self.udp_sockets:
            sock.close()
        self.stream_ports, self.udp_sockets = [], []
        if self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return None


def describe_status(status) -> str:
    signum = getattr(status, "signal", None)
    if signum:
        try:
            return "signal %s" % signal.Signals(signum).name
        except ValueError:
            return "signal %d" % signum
    return "exit status %s" % getattr(status, "exitCode", "?")
