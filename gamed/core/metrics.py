"""Prometheus metrics: one registry per daemon (no module-level state), all named gamed_*."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "gamed_"


class Metrics:
    """The daemon's metrics; games add their own with counter()/gauge()/histogram()."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self._made: dict[str, object] = {}
        self.services: dict[str, ServiceStats] = {}
        self.registry.register(_ServiceStatsCollector(self.services))
        self.db_query_seconds = self.histogram(
            "db_query_seconds", "Database transaction latency", ["description"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0))
        self.bcrypt_queue = self.gauge("bcrypt_queue", "Password hashes waiting or running")
        self.logins = self.counter("logins", "Login attempts by outcome", ["outcome"])

    def service(self, name: str) -> "ServiceStats":
        """The hot-path counters of one service (plain ints, read at scrape time)."""
        if name not in self.services:
            self.services[name] = ServiceStats(name)
        return self.services[name]

    def _get(self, kind, name, documentation, labels, **extra):
        full = PREFIX + name
        if full not in self._made:
            self._made[full] = kind(full, documentation, labelnames=tuple(labels or ()),
                                    registry=self.registry, **extra)
        return self._made[full]

    def counter(self, name: str, documentation: str, labels=None) -> Counter:
        return self._get(Counter, name, documentation, labels)

    def gauge(self, name: str, documentation: str, labels=None) -> Gauge:
        return self._get(Gauge, name, documentation, labels)

    def histogram(self, name: str, documentation: str, labels=None, **extra) -> Histogram:
        return self._get(Histogram, name, documentation, labels, **extra)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceStats:
    """Per-service counters kept as plain ints: the relay paths count millions a second,
    where a labelled prometheus Counter (a lock and a dict lookup each) would show."""

    def __init__(self, service: str):
        self.service = service
        self.messages_in = 0
        self.messages_out = 0
        self.connections: dict[str, int] = {}
        self.connections_total = 0
        self.connections_refused = 0
        self.errors: dict[str, int] = {}

    def connection_opened(self, transport: str) -> None:
        self.connections[transport] = self.connections.get(transport, 0) + 1
        self.connections_total += 1

    def connection_closed(self, transport: str) -> None:
        self.connections[transport] = self.connections.get(transport, 0) - 1

    def error(self, code: str, count: int = 1) -> None:
        self.errors[code] = self.errors.get(code, 0) + count


class _ServiceStatsCollector:
    def __init__(self, services: dict):
        self.services = services

    def describe(self):
        return []

    def collect(self):
        open_now = GaugeMetricFamily(PREFIX + "connections", "Open connections",
                                     labels=["service", "transport"])
        opened = CounterMetricFamily(PREFIX + "connections_opened", "Connections accepted",
                                     labels=["service"])
        refused = CounterMetricFamily(PREFIX + "connections_refused",
                                      "Connections refused at the max_connections limit",
                                      labels=["service"])
        received = CounterMetricFamily(PREFIX + "messages_in", "Messages received",
                                       labels=["service"])
        sent = CounterMetricFamily(PREFIX + "messages_out", "Messages sent", labels=["service"])
        errors = CounterMetricFamily(PREFIX + "errors", "Refused input and error replies",
                                     labels=["service", "code"])
        for name, stats in sorted(self.services.items()):
            for transport, count in sorted(stats.connections.items()):
                open_now.add_metric([name, transport], count)
            opened.add_metric([name], stats.connections_total)
            refused.add_metric([name], stats.connections_refused)
            received.add_metric([name], stats.messages_in)
            sent.add_metric([name], stats.messages_out)
            for code, count in sorted(stats.errors.items()):
                errors.add_metric([name, code], count)
        return [open_now, opened, refused, received, sent, errors]
