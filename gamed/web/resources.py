"""HTTP resources: /healthz, /metrics, the JSON API root and the site's tree of pages."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from gamed.core.logs import log_failure
from gamed.web.gate import PageGate

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


class ApiError(Exception):
    """An answer other than 200: its status, a stable code and a message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class JsonEndpoint(resource.Resource):
    """Runs `answer(request, *path)` (a coroutine) and writes its JSON, or the error's."""

    isLeaf = True

    def __init__(self, core):
        super().__init__()
        self.core = core

    async def answer(self, request, *path):
        raise NotImplementedError

    def render_GET(self, request):
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        d = defer.ensureDeferred(self.answer(request, *path))

        def ok(value):
            return 200, value

        def failed(failure):
            if failure.check(ApiError):
                error = failure.value
                return error.status, {"error": error.code, "message": error.message}
            log_failure(log, "HTTP request {uri} failed", failure, uri=request.uri)
            return 500, {"error": "internal", "message": "the server failed to answer"}

        def write(result):
            status, body = result
            if not request.finished and not getattr(request, "_disconnected", False):
                request.write(json_body(request, status, body))
                request.finish()

        d.addCallbacks(ok, failed).addCallback(write)
        return server.NOT_DONE_YET


class Health(JsonEndpoint):
    """200 when the database answers within HEALTH_TIMEOUT seconds and the node is in
    its cluster (when it has one), 503 otherwise with the reason in `message` (the
    driver's error, or that it did not answer in time). With workers, `workers` says
    which are up (their cluster heartbeats) and `status` is "degraded" while one is
    down: the server still serves on the others."""

    async def answer(self, request, *path):
        cluster = self.core.cluster
        problem = cluster.problem()
        if problem is not None:
            log.warn("health check: cluster: {problem}", problem=problem)
            raise ApiError(503, "unavailable", "cluster: %s" % problem)
        database = self.core.database
        try:
            await database.ping(HEALTH_TIMEOUT)
        except Exception as exc:
            problem = str(exc) or type(exc).__name__
            log.warn("health check: database did not answer: {problem}", problem=problem)
            raise ApiError(503, "unavailable", "database %s: %s" % (database.name, problem))
        answer = {"status": "ok", "database": database.name}
        if cluster.clustered:
            answer["node"] = cluster.node
        if self.core.workers:
            # any worker answers for the whole server: the others are alive when their
            # heartbeats are (the supervisor starts a dead one again)
            seen = set(getattr(cluster, "live", ())) | {cluster.node}
            missing = [name for name in self.core.workers if name not in seen]
            answer["workers"] = {name: "down" if name in missing else "up"
                                 for name in self.core.workers}
            if missing:
                answer["status"] = "degraded"
        return answer


class MetricsPage(resource.Resource):
    isLeaf = True

    def __init__(self, metrics):
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request):
        request.setHeader(b"content-type", self.metrics.content_type.encode("ascii"))
        return self.metrics.render()


class Root(resource.Resource):
    """/ is the games page; the other pages, the JSON API, health and metrics below it."""

    def __init__(self, core, recent=None, reads=None):
        super().__init__()
        from gamed.web import pages
        from gamed.web.api import Api
        from gamed.web.render import make_environment
        from gamed.web.static_files import StaticFiles

        self.core = core
        env = make_environment()
        if reads is None:
            from gamed.web.reads import PageReads

            reads = PageReads(core.database)
        self.home = pages.Home(core, env, reads)
        http = core.config.http
        #: the public pages' turns (gamed.web.gate); the console is not held up by them
        self.gate = PageGate(core.reactor, http.page_concurrency, http.page_queue,
                             http.page_max_wait)
        self.putChild(b"healthz", Health(core))
        self.putChild(b"metrics", MetricsPage(core.metrics))
        api = Api(core)
        api.putChild(b"live", pages.LiveCounts(core))
        self.putChild(b"api", api)
        self.putChild(b"static", StaticFiles())
        self.putChild(b"leaderboard", pages.Leaderboard(core, env, reads))
        self.putChild(b"players", pages.PlayerSearch(core, env, reads))
        self.putChild(b"matches", pages.MatchPage(core, env, reads))
        from gamed.web.play import PlayUttt

        self.putChild(b"play", PlayUttt(core, env))
        for page in (self.home, self.children[b"leaderboard"], self.children[b"players"],
                     self.children[b"matches"], self.children[b"play"]):
            page.gate = self.gate
        if core.config.http.debug_objects:  # a soak's leak finder; off: a 404
            from gamed.web.debug import ObjectCounts

            debug = resource.Resource()
            debug.putChild(b"objects", ObjectCounts())
            self.putChild(b"debug", debug)
        if core.config.http.admin_password_hash:  # without it /admin is a 404
            from gamed.web.admin import AdminConsole

            self.putChild(b"admin", AdminConsole(core, env, recent))

    def getChild(self, path, request):
        if path == b"":
            return self.home
        return NotFound()

    def render_GET(self, request):
        return self.home.render_GET(request)


class Site(server.Site):
    """twisted.web's Site, with the access log only when `[http] access_log` is on (a
    line formatted and filtered per request otherwise: 8% of a cached page's cost)."""

    access_log = False

    def log(self, request):
        if self.access_log:
            server.Site.log(self, request)


def make_site(core, recent=None, reads=None) -> server.Site:
    """The site; `recent` (a RecentProblems log observer) feeds /admin's error list,
    `reads` (gamed.web.reads.PageReads) is where the pages read (the core's database
    when None)."""
    site = Site(Root(core, recent, reads))
    site.displayTracebacks = False
    site.access_log = core.config.http.access_log
    return site
