"""HTML pages: the Jinja2 environment (autoescaped: every name a player chose is escaped)
and `Page`, the resource base class that renders a template from an async `page()`."""

from __future__ import annotations

import datetime
import gzip
from typing import Optional
from urllib.parse import quote

import attrs
import jinja2
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from gamed.web.gate import PageRefused

log = Logger(namespace="gamed.web")

GAME_TITLES = {"novaglide": "Novaglide", "blockattack": "Block Attack",
               "uttt": "Ultimate tic-tac-toe", "rooms": "Rooms"}


def when(value) -> str:
    """ISO-8601 text or epoch seconds -> 'YYYY-MM-DD HH:MM' (UTC); '' for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat()
    return str(value).replace("T", " ")[:16]


def rating(value) -> str:
    return "" if value is None else "%.0f" % value


def signed(value) -> str:
    if value is None:
        return ""
    return "%+.1f" % value if abs(value) >= 0.05 else "±0"


def player_href(name: str) -> str:
    """The player page's path: every character but letters, digits and -._~ escaped."""
    return "/players/" + quote(name, safe="")


def score(value) -> str:
    return "" if value is None else "%g" % value


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gamed.web", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False)  # templates ship with the package: no stat() per page
    env.filters.update(when=when, rating=rating, signed=signed, score=score,
                       player_href=player_href)
    env.globals.update(game_titles=GAME_TITLES)
    return env


@attrs.frozen
class Html:
    """What a page answers: a template and its values (or a redirect)."""

    template: str
    values: dict = attrs.Factory(dict)
    status: int = 200
    headers: dict = attrs.Factory(dict)


@attrs.frozen
class Redirect:
    location: str
    status: int = 303
    headers: dict = attrs.Factory(dict)


class PageError(Exception):
    """A page that cannot be shown: its status and a message for the visitor."""

    def __init__(self, status: int, title: str, message: str = ""):
        super().__init__(message or title)
        self.status = status
        self.title = title
        self.message = message


def render_html(env: jinja2.Environment, answer, extra: Optional[dict] = None) -> bytes:
    values = dict(answer.values)
    values.update(extra or {})
    return env.get_template(answer.template).render(**values).encode("utf-8")


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
     b"script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'"))


def entity_tag(body: bytes) -> bytes:
    """An ETag of a page's bytes: its length and 64-bit hash. Python's own hash of bytes,
    not hashlib: hashlib lets go of the GIL for anything over 2 KiB, and the reactor
    then waits for it behind a database thread (0.6 ms a page, measured). The hash is
    seeded per process: after a restart (or on another node) a visitor gets one 200
    instead of a 304."""
    return b'"%x-%x"' % (len(body), hash(body) & 0xFFFFFFFFFFFFFFFF)


GZIP_LEVEL = 1  # 11 KiB of player page -> 2.3 KiB in 0.05 ms (level 6: 2.0 KiB, 0.1 ms)
GZIP_MIN = 1024  # smaller bodies go as they are


@attrs.define
class Rendered:
    """A page's bytes, its ETag and (made once, when a visitor asks) its gzip form."""

    body: bytes
    etag: Optional[bytes] = None
    _gzipped: Optional[bytes] = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped


def accepts_gzip(request) -> bool:
    accepted = request.getHeader(b"accept-encoding")
    if not accepted:
        return False
    for part in accepted.lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip() == b"gzip":
            return params.replace(b" ", b"") not in (b"q=0", b"q=0.0", b"q=0.00",
                                                      b"q=0.000")
    return False


def write_html(request, env: jinja2.Environment, answer, extra: Optional[dict] = None,
               rendered: Optional[Rendered] = None, compress: bool = True) -> None:
    """Write an Html or Redirect answer (rendered: the Html already rendered, with its
    ETag: a visitor whose If-None-Match has it gets a bodiless 304). Bodies over 1 KiB go
    gzipped to visitors that accept it (`compress`: not pages with secrets in them, such
    as the console's CSRF tokens: compressed beside what a visitor typed, they leak)."""
    if request.finished or getattr(request, "_disconnected", False):
        return
    for name, value in answer.headers.items():
        if name.lower() == "set-cookie":
            for cookie in value:
                request.responseHeaders.addRawHeader(b"set-cookie", cookie.encode("ascii"))
        else:
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
    request.setResponseCode(answer.status)
    if isinstance(answer, Redirect):
        request.setHeader(b"location", answer.location.encode("utf-8"))
        request.finish()
        return
    if rendered is None:
        rendered = Rendered(render_html(env, answer, extra))
    headers = request.responseHeaders
    for name, value in SECURITY_HEADERS:
        headers.setRawHeaders(name, [value])
    body, etag = rendered.body, rendered.etag
    if compress and len(body) >= GZIP_MIN:
        headers.setRawHeaders(b"vary", [b"accept-encoding"])
        if accepts_gzip(request):
            body = rendered.gzipped()
            headers.setRawHeaders(b"content-encoding", [b"gzip"])
            if etag is not None:  # another representation: another tag
                etag = etag[:-1] + b'-gz"'
    if etag is not None:
        headers.setRawHeaders(b"etag", [etag])
        headers.setRawHeaders(b"cache-control", [b"no-cache"])  # always asked again
        wanted = request.getHeader(b"if-none-match")
        if wanted is not None and etag in (t.strip() for t in wanted.split(b",")):
            request.setResponseCode(304)
            request.finish()
            return
    headers.setRawHeaders(b"content-type", [b"text/html; charset=utf-8"])
    headers.setRawHeaders(b"content-length", [b"%d" % len(body)])  # known: not chunked
    request.write(body)
    request.finish()


BUSY = PageError(503, "Busy", "Too many pages are being made right now: try again in a "
                              "second.")
_busy_pages: dict = {}  # Environment -> Rendered: the 503 page, rendered once


def refused_html(request, env: jinja2.Environment) -> None:
    """503 with Retry-After: too many pages are being built (gamed.web.gate). Rendered
    once: refusing must stay cheap when the daemon is busiest."""
    answer = error_html(BUSY)
    rendered = _busy_pages.get(env)
    if rendered is None:
        rendered = _busy_pages[env] = Rendered(render_html(env, answer))
    request.setHeader(b"retry-after", b"1")
    write_html(request, env, answer, rendered=rendered)


def error_html(error: PageError) -> Html:
    return Html("error.html", {"title": error.title, "message": error.message},
                status=error.status)


class Page(resource.Resource):
    """Runs `page(request, *path)` (a coroutine returning Html or Redirect) and writes it;
    a PageError becomes an error page with its status, anything else a 500 page.

    With a `gate` (gamed.web.gate.PageGate: the public pages) at most so many pages are
    built at once, the others wait briefly or get a 503. A 200 page carries an ETag
    (`etags`), and a visitor who has it gets a 304."""

    isLeaf = True
    #: seconds a rendered 200 answer is reused for the same URL (0: never); pages that
    #: everyone asks for, whose data may be a moment old, set it
    cache_seconds = 0.0
    CACHE_SIZE = 256
    etags = True
    compress = True  # gzip for visitors that accept it
    gate = None

    def __init__(self, core, env: jinja2.Environment, reads=None):
        super().__init__()
        from gamed.web.reads import PageReads

        self.core = core
        self.env = env
        #: the stores the page reads through (gamed.web.reads)
        self.reads = reads or PageReads(core.database)
        self.cache: dict = {}  # uri -> (expires, Html, Rendered)
        #: uri -> requests waiting for the one page of that uri being built (cached
        #: pages: when one expires, the visitors meanwhile share the next one)
        self.building: dict = {}

    async def page(self, request, *path):
        raise NotImplementedError

    def render_GET(self, request):
        if self.cache_seconds:
            hit = self.cache.get(request.uri)
            if hit is not None and hit[0] > self.core.reactor.seconds():
                write_html(request, self.env, hit[1], rendered=hit[2], compress=self.compress)
                return server.NOT_DONE_YET
            waiting = self.building.get(request.uri)
            if waiting is not None:
                waiting.append(request)
                return server.NOT_DONE_YET
            self.building[request.uri] = []
        if self.gate is None:
            return self._answer(request, self.page)
        uri = request.uri

        def refused(failure):
            failure.trap(PageRefused)
            self.core.metrics.counter(
                "gamed_http_pages_refused_total", "Public pages answered 503 (too many "
                "being built; reason: full queue or waited too long)",
                ["reason"]).labels(failure.getErrorMessage()).inc()
            for waiter in [request] + self.building.pop(uri, []):
                refused_html(waiter, self.env)

        def build(_):
            self._build(request, self.page).addBoth(lambda _: self.gate.leave())

        self.gate.enter().addCallbacks(build, refused)
        return server.NOT_DONE_YET

    def _remember(self, request, answer) -> Optional[Rendered]:
        """A 200 page rendered with its ETag (kept for `cache_seconds` when the page sets
        it); None for anything else."""
        if not (isinstance(answer, Html) and answer.status == 200
                and request.method == b"GET"):
            return None
        if not (self.cache_seconds or self.etags):
            return None
        body = render_html(self.env, answer, self.extra_values(request))
        rendered = Rendered(body, entity_tag(body) if self.etags else None)
        if self.cache_seconds:
            if len(self.cache) >= self.CACHE_SIZE:
                self.cache.clear()
            self.cache[request.uri] = (self.core.reactor.seconds() + self.cache_seconds,
                                       answer, rendered)
        return rendered

    def _answer(self, request, handler):
        self._build(request, handler)
        return server.NOT_DONE_YET

    def _build(self, request, handler) -> defer.Deferred:
        """Run the handler and write its answer (to the visitors waiting for the same
        cached page too); fires when written."""
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        d = defer.ensureDeferred(handler(request, *path))

        def failed(failure):
            if failure.check(PageError):
                return error_html(failure.value)
            log.failure("HTTP page {uri} failed", failure, uri=request.uri)
            return error_html(PageError(500, "Something went wrong",
                                        "The server failed to show this page."))

        def write(answer):
            waiters = self.building.pop(request.uri, ()) if self.cache_seconds else ()
            rendered = self._remember(request, answer)
            extra = self.extra_values(request)
            for each in (request, *waiters):
                write_html(each, self.env, answer, extra, rendered, self.compress)

        d.addErrback(failed).addCallback(write)
        d.addErrback(lambda f: log.failure("writing page {uri} failed", f, uri=request.uri))
        return d

    def extra_values(self, request) -> dict:
        return {}


def query_arg(request, name: str) -> Optional[str]:
    raw = request.args.get(name.encode(), [None])[0]
    if raw is None or raw == b"":
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PageError(400, "Bad request", "%s is not UTF-8" % name) from None


def int_query(request, name: str, default: int, low: int, high: int) -> int:
    text = query_arg(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise PageError(400, "Bad request", "%s must be a whole number" % name) from None
    if not low <= value <= high:
        raise PageError(400, "Bad request", "%s must be between %d and %d" % (name, low, high))
    return value
