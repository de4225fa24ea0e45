"""HTTP resources: /healthz, /metrics and the JSON API root."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

log = Logger(namespace="gamed.web")

HEALTH_TIMEOUT = 2.0


def json_body(request, status: int, value) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class NotFound(resource.Resource):
    isLeaf = True

    def render(self, request):
        return json_body(request, 404, {"error": "not_found", "message": "no such page"})


class Health(resource.Resource):
    """200 when the database answers within HEALTH_TIMEOUT seconds, 503 otherwise."""

    isLeaf = True

    def __init__(self, core):
        super().__init__()
        self.core = core

    def render_GET(self, request):
        d = self.core.database.ping()
        d.addTimeout(HEALTH_TIMEOUT, self.core.reactor)

        def ok(_):
            return 200, {"status": "ok", "database": self.core.database.name}

        def failed(failure):
            log.warn("health check: database did not answer: {problem}",
                     problem=failure.getErrorMessage())
            return 503, {"status": "unavailable", "database": self.core.database.name,
                         "problem": failure.getErrorMessage() or "timeout"}

        def respond(result):
            status, body = result
            if not request.finished and not getattr(request, "_disconnected", False):
                request.write(json_body(request, status, body))
                request.finish()

        d.addCallbacks(ok, failed).addCallback(respond)
        return server.NOT_DONE_YET


class MetricsPage(resource.Resource):
    isLeaf = True

    def __init__(self, metrics):
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request):
        request.setHeader(b"content-type", self.metrics.content_type.encode("ascii"))
        return self.metrics.render()


class Root(resource.Resource):
    def __init__(self, core):
        super().__init__()
        self.core = core
        self.putChild(b"healthz", Health(core))
        self.putChild(b"metrics", MetricsPage(core.metrics))
        from gamed.web.api import Api

        self.putChild(b"api", Api(core))

    def getChild(self, path, request):
        return NotFound()

    def render_GET(self, request):
        return json_body(request, 200, {"service": "gamed", "endpoints": [
            "/healthz", "/metrics", "/api/leaderboard/{game}", "/api/players/{name}",
            "/api/matches"]})


def make_site(core) -> server.Site:
    site = server.Site(Root(core))
    site.displayTracebacks = False
    return site
