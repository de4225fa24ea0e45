"""/debug/objects (off unless `[http] debug_objects`): live Python objects per type, for
finding leaks in a soak (bench/soak.py). Counting walks every object on the reactor
thread (tens of ms): for a test bench, never for production scraping."""

from __future__ import annotations

import collections
import gc
import json

from twisted.web import resource


def object_counts(top: int = 30) -> list:
    """[(type name, live count)] of the `top` commonest types, after a full collection:
    the objects the collector tracks (containers, instances) made since start-up (what
    start-up built is frozen out of its sight: see gamed.core.systemd)."""
    gc.collect()
    counts = collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())
    return counts.most_common(top)


class ObjectCounts(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps({"objects": object_counts()}).encode("utf-8")
