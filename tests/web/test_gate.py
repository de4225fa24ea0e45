"""Public pages under a crowd: the page gate's turns, 503 with Retry-After when it is
full, one build shared by the visitors of a cached page, ETag and 304."""

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from gamed.web import pages
from gamed.web.gate import PageGate, PageRefused
from gamed.web.resources import make_site


def test_gate_turns_queue_and_refusals():
    clock = task.Clock()
    gate = PageGate(clock, concurrency=1, queue=2, max_wait=0.5)
    first = gate.enter()
    assert first.called and gate.active == 1
    second, third = gate.enter(), gate.enter()
    assert not second.called and not third.called
    full = gate.enter()
    failures = []
    full.addErrback(failures.append)
    assert failures and failures[0].check(PageRefused) and gate.refused["full"] == 1
    gate.leave()  # the first page is done: the second gets its turn
    assert second.called and not third.called and gate.active == 1
    clock.advance(0.6)  # the third waited too long
    third.addErrback(failures.append)
    assert len(failures) == 2 and gate.refused["waited"] == 1 and not gate.waiting
    gate.leave()
    assert gate.active == 0
    assert gate.enter().called


async def serve(core):
    site = make_site(core)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    return site, port, "http://127.0.0.1:%d" % port.getHost().port


async def get(url, headers=None):
    response = await Agent(reactor).request(b"GET", url.encode(),
                                            Headers(headers or {}))
    return response.code, response.headers, (await readBody(response)).decode()


@pytest_twisted.ensureDeferred
async def test_a_full_gate_answers_503_with_retry_after_and_the_console_is_not_gated(core):
    await core.accounts.register("ann", "pw", "h:1")
    site, port, base = await serve(core)
    try:
        gate = site.resource.gate
        gate.active, gate.queue = gate.concurrency, 0  # every turn taken, no queue
        code, headers, body = await get(base + "/players/ann")
        assert code == 503 and headers.getRawHeaders(b"retry-after") == [b"1"]
        assert "try again" in body
        assert "gamed_http_pages_refused_total" in (await get(base + "/metrics"))[2]
        assert (await get(base + "/healthz"))[0] == 200  # not a page: not gated
        gate.active = 0
        assert (await get(base + "/players/ann"))[0] == 200
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_etag_answered_back_gets_a_304_without_body(core):
    await core.accounts.register("ann", "pw", "h:1")
    site, port, base = await serve(core)
    try:
        code, headers, body = await get(base + "/players/ann")
        etag = headers.getRawHeaders(b"etag")[0]
        assert code == 200 and etag.startswith(b'"') and "ann" in body
        code, headers, body = await get(base + "/players/ann", {b"if-none-match": [etag]})
        assert code == 304 and body == "" and headers.getRawHeaders(b"etag") == [etag]
        code, _, body = await get(base + "/players/ann", {b"if-none-match": [b'"other"']})
        assert code == 200 and "ann" in body
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_visitors_of_a_cached_page_share_one_build(core, monkeypatch):
    calls, release = [], defer.Deferred()
    original = pages.Home.page

    async def slow_page(self, request, *path):
        calls.append(request.uri)
        await release
        return await original(self, request, *path)

    monkeypatch.setattr(pages.Home, "page", slow_page)
    site, port, base = await serve(core)
    try:
        visits = [defer.ensureDeferred(get(base + "/")) for _ in range(3)]
        while not calls:
            await task.deferLater(reactor, 0.01, lambda: None)
        await task.deferLater(reactor, 0.1, lambda: None)  # the others have arrived
        release.callback(None)
        answers = await defer.gatherResults(visits)
        assert [code for code, _, _ in answers] == [200, 200, 200]
        assert len(calls) == 1 and len({body for _, _, body in answers}) == 1
    finally:
        await port.stopListening()


@pytest.mark.parametrize("key", ["page_concurrency", "page_max_wait"])
def test_page_limits_must_be_positive(key):
    import attrs

    from gamed.core.config import ConfigError, validate
    from gamed.core.testing import make_test_config

    config = make_test_config()
    config = attrs.evolve(config, http=attrs.evolve(config.http, **{key: 0}))
    with pytest.raises(ConfigError, match=key):
        validate(config)


@pytest_twisted.ensureDeferred
async def test_pages_go_gzipped_to_visitors_that_accept_it(core):
    import gzip

    await core.accounts.register("ann", "pw", "h:1")
    site, port, base = await serve(core)
    try:
        plain_code, plain_headers, plain = await get(base + "/players/ann")
        response = await Agent(reactor).request(
            b"GET", (base + "/players/ann").encode(),
            Headers({b"accept-encoding": [b"br, gzip;q=0.8"]}))
        packed = await readBody(response)
        assert response.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
        assert response.headers.getRawHeaders(b"vary") == [b"accept-encoding"]
        assert len(packed) < 0.6 * len(plain.encode())
        assert gzip.decompress(packed).decode() == plain
        etag = response.headers.getRawHeaders(b"etag")[0]
        assert etag != plain_headers.getRawHeaders(b"etag")[0]  # its own representation
        assert plain_headers.getRawHeaders(b"content-encoding") is None
        refused = await Agent(reactor).request(
            b"GET", (base + "/players/ann").encode(),
            Headers({b"accept-encoding": [b"gzip;q=0"]}))
        assert refused.headers.getRawHeaders(b"content-encoding") is None
        await readBody(refused)
    finally:
        await port.stopListening()
