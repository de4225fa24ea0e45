"""Reactor lateness: how late a short timer fires, so a blocked reactor shows in /metrics."""

from __future__ import annotations

from twisted.application import service

INTERVAL = 0.05  # seconds between samples
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ReactorLagMonitor(service.Service):
    """Every INTERVAL seconds, observe how long after its due time the timer ran
    (`gamed_reactor_lag_seconds`): anything that holds the reactor thread (a blocking
    call, a long loop) delays every connection by as much, and is seen here."""

    name = "reactor-lag"

    def __init__(self, reactor, metrics, interval: float = INTERVAL):
        self.reactor = reactor
        self.interval = interval
        self.lag = metrics.histogram("reactor_lag_seconds",
                                     "How late a %g s timer on the reactor fired" % interval,
                                     buckets=BUCKETS)
        self.call = None
        self.due = 0.0

    def startService(self):
        service.Service.startService(self)
        self._schedule()

    def _schedule(self) -> None:
        self.due = self.reactor.seconds() + self.interval
        self.call = self.reactor.callLater(self.interval, self._sample)

    def _sample(self) -> None:
        self.lag.observe(max(0.0, self.reactor.seconds() - self.due))
        self._schedule()

    def stopService(self):
        service.Service.stopService(self)
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
