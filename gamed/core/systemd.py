"""systemd integration: sd_notify (READY=1 once listening, STOPPING=1 on shutdown) and the
open-files limit raised at start."""

from __future__ import annotations

import gc
import os
import resource
import socket

from twisted.application import service
from twisted.logger import Logger

log = Logger(namespace="gamed.systemd")


def sd_notify(state: str, environ=None) -> bool:
    """Send one state line to $NOTIFY_SOCKET; False when not run under systemd."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(address)
        sock.sendall(state.encode("utf-8"))
        return True
    except OSError as exc:
        log.warn("sd_notify {state!r} failed: {problem}", state=state, problem=exc)
        return False
    finally:
        sock.close()


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return soft, target
        except (ValueError, OSError):
            log.warn("could not raise the open-files limit from {soft}", soft=soft)
    return soft, soft


class NotifyService(service.Service):
    """The last service started (READY=1 when the reactor runs and every listener is up)
    and the first stopped (STOPPING=1 before anything is torn down)."""

    name = "sd_notify"

    def __init__(self, reactor, environ=None, notify=None):
        self.reactor = reactor
        self.environ = environ
        #: notify(state, environ) -> bool: sd_notify, or a worker's line to its supervisor
        self.notify = notify or sd_notify

    def startService(self):
        service.Service.startService(self)
        self.reactor.callWhenRunning(self._ready)

    def _ready(self):
        # everything built at start-up lives as long as the process: keep it out of the
        # cyclic collector's way (shorter full collections, so fewer late 60 Hz ticks)
        gc.collect()
        gc.freeze()
        if self.notify("READY=1\nSTATUS=gamed is serving", self.environ):
            log.info("told systemd READY=1")

    def stopService(self):
        service.Service.stopService(self)
        self.notify("STOPPING=1\nSTATUS=gamed is draining", self.environ)
