"""The read API: leaderboard, players, matches; pagination and errors."""

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, readBody

from gamed.store.ratings import MatchPlayer, MatchResult
from gamed.web.resources import make_site


async def get(core, path):
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make_site(core))
    try:
        url = "http://127.0.0.1:%d%s" % (port.getHost().port, path)
        response = await Agent(reactor).request(b"GET", url.encode())
        return response.code, json.loads(await readBody(response))
    finally:
        await port.stopListening()


async def seed(core):
    a = await core.accounts.register("ann", "pw", "h:1")
    b = await core.accounts.register("ben", "pw", "h:1")
    for i in range(3):
        await core.ratings.record_match(MatchResult(
            "uttt", [MatchPlayer(a.id, "win", 1), MatchPlayer(b.id, "loss", 0)], "won",
            k_factor=20, details={"n": i}))
    await core.ratings.record_match(MatchResult(
        "novaglide", [MatchPlayer(b.id, "win", 2), MatchPlayer(a.id, "loss", 1)], "time",
        k_factor=40))
    return a, b


@pytest_twisted.ensureDeferred
async def test_leaderboard_and_paging(core):
    await seed(core)
    code, body = await get(core, "/api/leaderboard/uttt?limit=1")
    assert code == 200
    assert [p["name"] for p in body["players"]] == ["ann"] and body["players"][0]["wins"] == 3
    assert body["next"] == "/api/leaderboard/uttt?limit=1&offset=1"
    code, body = await get(core, body["next"])
    assert [p["name"] for p in body["players"]] == ["ben"] and body["next"] is None
    code, body = await get(core, "/api/leaderboard/chess")
    assert code == 404 and body["error"] == "unknown_game"
    code, body = await get(core, "/api/leaderboard/uttt?limit=abc")
    assert code == 400 and body["error"] == "bad_parameter"
    code, body = await get(core, "/api/leaderboard/uttt?limit=0")
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_player_page(core):
    a, _ = await seed(core)
    core.presence.arrived(a.id, "uttt")
    code, body = await get(core, "/api/players/ANN")
    assert code == 200 and body["name"] == "ann" and body["online"] is True
    assert body["playing"] == ["uttt"]
    assert body["games"]["uttt"]["wins"] == 3 and body["games"]["uttt"]["rank"] == 1
    assert body["games"]["novaglide"]["losses"] == 1
    code, body = await get(core, "/api/players/nobody")
    assert code == 404 and body["error"] == "unknown_player"
    for path in ("/api/players/ab%00c", "/api/matches?player=x%00"):  # 404, not a 500
        code, body = await get(core, path)
        assert code == 404 and body["error"] == "unknown_player", (path, body)
    code, body = await get(core, "/api")
    assert code == 404 and body["error"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_matches_filter_and_paging(core):
    await seed(core)
    code, body = await get(core, "/api/matches?player=ben&game=uttt&limit=2")
    assert code == 200 and len(body["matches"]) == 2
    assert all(m["game"] == "uttt" for m in body["matches"])
    assert body["matches"][0]["players"][0]["name"] == "ann"
    assert body["matches"][0]["details"] == {"n": 2}
    code, more = await get(core, body["next"])
    assert [m["details"]["n"] for m in more["matches"]] == [0] and more["next"] is None
    code, body = await get(core, "/api/matches?limit=10")
    assert len(body["matches"]) == 4
    assert (await get(core, "/api/matches?player=ghost"))[0] == 404
    assert (await get(core, "/api/matches?game=nope"))[0] == 404
    assert (await get(core, "/api/matches?before=-1"))[0] == 400
