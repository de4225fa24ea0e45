"""/healthz, /metrics and unknown paths, over a real loopback listener."""

import json

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, readBody

from gamed.web.resources import make_site


async def get(core, path):
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make_site(core))
    try:
        url = "http://127.0.0.1:%d%s" % (port.getHost().port, path)
        response = await Agent(reactor).request(b"GET", url.encode())
        body = await readBody(response)
        return response.code, response.headers, body.decode()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_healthz_200_when_the_database_answers(core):
    code, _, body = await get(core, "/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"


@pytest_twisted.ensureDeferred
async def test_healthz_503_when_the_database_does_not(core, monkeypatch):
    monkeypatch.setattr(core.database, "ping",
                        lambda timeout=None: defer.fail(RuntimeError("connection refused")))
    code, _, body = await get(core, "/healthz")
    assert code == 503 and "connection refused" in json.loads(body)["message"]


@pytest_twisted.ensureDeferred
async def test_metrics_are_prometheus_text_named_gamed(core):
    core.metrics.service("novaglide").messages_in += 3
    await core.database.ping()
    code, headers, body = await get(core, "/metrics")
    assert code == 200
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    assert 'gamed_messages_in_total{service="novaglide"} 3.0' in body
    assert "# TYPE gamed_db_query_seconds histogram" in body
    assert "gamed_bcrypt_queue" in body


@pytest_twisted.ensureDeferred
async def test_unknown_path_is_404_json(core):
    code, _, body = await get(core, "/no/such/thing")
    assert code == 404 and json.loads(body)["error"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_debug_objects_only_when_configured(core):
    from gamed.core.config import set_option

    code, _, _ = await get(core, "/debug/objects")
    assert code == 404
    core.config = set_option(core.config, "http", "debug_objects", True)
    code, _, body = await get(core, "/debug/objects")
    counts = dict(json.loads(body)["objects"])
    assert code == 200 and counts["dict"] > 0 and counts["function"] > 0
