"""/metrics for a server with workers: every worker's series, labelled `worker`.

A scrape reaches one worker (the HTTP port is shared). Each worker writes its own
exposition to `<metrics_dir>/<node>.prom` every SNAPSHOT_INTERVAL seconds (written aside,
then renamed: a reader never sees half a file); the scraped worker renders its own now,
reads the others' latest and answers all of them, each sample with `worker="<node>"`.
A series is at most SNAPSHOT_INTERVAL old, and the hot paths keep their plain-int
counters (prometheus_client's multiprocess mode would need them all as its mmap'ed
values and cannot take the collectors that read them at scrape time). A worker started
again writes the same file: its counters start from zero under the same label, which
Prometheus' rate() reads as a counter reset.
"""

from __future__ import annotations

import os

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.application import internet
from twisted.logger import Logger

from gamed.core.metrics import Metrics

log = Logger(namespace="gamed.workers")

SNAPSHOT_INTERVAL = 1.0
SUFFIX = ".prom"


def merge_expositions(texts: dict) -> bytes:
    """{worker: exposition text} -> one exposition, each sample labelled with its worker."""
    families: dict[str, Metric] = {}
    for worker, text in sorted(texts.items()):
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation,
                                                        family.type, family.unit)
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels,
                                                              "worker": worker}))
    return generate_latest(_Families(list(families.values())))


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


class WorkerMetrics(Metrics):
    """A worker's metrics: its own registry, written to the shared directory, and the
    whole server's on render()."""

    def __init__(self, node: str, directory: str, reactor=None):
        super().__init__()
        self.node = node
        self.directory = directory

    def own(self) -> bytes:
        return generate_latest(self.registry)

    def write_snapshot(self) -> None:
        path = os.path.join(self.directory, self.node + SUFFIX)
        try:
            with open(path + ".new", "wb") as out:
                out.write(self.own())
            os.replace(path + ".new", path)
        except OSError as exc:  # the supervisor removed the directory: it is stopping
            log.debug("worker metrics not written: {e}", e=exc)

    def others(self) -> dict:
        texts = {}
        try:
            names = os.listdir(self.directory)
        except OSError:
            return texts
        for name in names:
            node = name[:-len(SUFFIX)]
            if not name.endswith(SUFFIX) or node == self.node:
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as handle:
                    texts[node] = handle.read().decode("utf-8")
            except OSError:
                continue
        return texts

    def render(self) -> bytes:
        texts = self.others()
        texts[self.node] = self.own().decode("utf-8")
        return merge_expositions(texts)

    def snapshot_service(self):
        return internet.TimerService(SNAPSHOT_INTERVAL, self.write_snapshot)
