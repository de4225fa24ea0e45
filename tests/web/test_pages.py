"""The public pages over a real loopback listener: content, paging, escaping, errors."""

import json
import re

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, readBody

from gamed.core.live import GameMonitor
from gamed.store.ratings import MatchPlayer, MatchResult
from gamed.web import pages
from gamed.web.resources import make_site


async def get(core, path):
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make_site(core))
    try:
        url = "http://127.0.0.1:%d%s" % (port.getHost().port, path)
        response = await Agent(reactor).request(b"GET", url.encode())
        body = (await readBody(response)).decode("utf-8")
        return response.code, response.headers, body
    finally:
        await port.stopListening()


async def play(core, game, winner, loser, reason="won", **details):
    return await core.ratings.record_match(MatchResult(
        game, [MatchPlayer(winner.id, "win", 1), MatchPlayer(loser.id, "loss", 0)], reason,
        k_factor=20, details=details))


EVIL = "<script>x</script>"


@pytest_twisted.ensureDeferred
async def test_home_lists_games_leaders_recent_matches_and_live_counts(core):
    ann = await core.accounts.register("ann", "pw", "h:1")
    evil = await core.accounts.register(EVIL, "pw", "h:1")
    await play(core, "uttt", ann, evil)
    core.presence.arrived(ann.id, "novaglide")
    core.live.register("novaglide", GameMonitor(count=lambda: 7))
    code, headers, body = await get(core, "/")
    assert code == 200 and headers.getRawHeaders(b"content-type")[0].startswith(b"text/html")
    assert "<script>x" not in body and "&lt;script&gt;x&lt;/script&gt;" in body
    for title in ("Novaglide", "Block Attack", "Ultimate tic-tac-toe", "Rooms"):
        assert title in body
    section = body[body.index('id="game-novaglide"'):body.index('id="game-blockattack"')]
    assert re.search(r'data-live="online">1<', section)
    assert re.search(r'data-live="matches">7<', section)
    assert '/players/ann"' in body and "/matches/1" in body
    code, _, live = await get(core, "/api/live")
    assert json.loads(live)["games"]["novaglide"] == {"online": 1, "matches": 7}
    assert json.loads(live)["games"]["uttt"] == {"online": 0, "matches": 0}
    code, _, css = await get(core, "/static/style.css")
    assert code == 200 and ".card" in css
    assert (await get(core, "/static/nope.css"))[0] == 404


@pytest_twisted.ensureDeferred
async def test_leaderboard_pages_and_finding_a_player(core, monkeypatch):
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    players = [await core.accounts.register("p%d" % i, "pw", "h:1") for i in range(5)]
    for i in range(4):  # p0 beats p1, p1 beats p2 ...: p0 highest
        await play(core, "uttt", players[i], players[i + 1])
    code, _, body = await get(core, "/leaderboard/uttt")
    assert code == 200 and "page 1 of 3" in body and "5 players" in body
    rows = re.findall(r'<tr[^>]*>\s*<td>(\d+)</td><td><a class="player" href="/players/(\w+)"',
                      body)
    assert [int(r[0]) for r in rows] == [1, 2]
    code, _, body = await get(core, "/leaderboard/uttt?page=3")
    assert len(re.findall(r'<td>5</td>', body)) == 1 and 'rel="prev"' in body
    rank = (await core.ratings.rank(players[4].id, "uttt"))
    code, _, body = await get(core, "/leaderboard/uttt?player=P4")
    assert code == 200 and "page %d of 3" % ((rank - 1) // 2 + 1) in body
    assert body.count('class="me"') == 1
    assert (await get(core, "/leaderboard/chess"))[0] == 404
    assert (await get(core, "/leaderboard/uttt?page=9"))[0] == 404
    assert (await get(core, "/leaderboard/uttt?page=x"))[0] == 400
    assert (await get(core, "/leaderboard/uttt?player=ghost"))[0] == 404


@pytest_twisted.ensureDeferred
async def test_player_page_ratings_chart_history_and_paging(core, monkeypatch):
    monkeypatch.setattr(pages, "HISTORY_SIZE", 3)
    ann = await core.accounts.register("ann", "pw", "h:1")
    bob = await core.accounts.register("b/o?b#", "pw", "h:1")
    for i in range(4):
        await play(core, "uttt", ann, bob, n=i)
    await play(core, "novaglide", bob, ann, "time")
    core.presence.arrived(ann.id, "uttt")
    code, _, body = await get(core, "/players/ANN")
    assert code == 200 and "online: uttt" in body
    ranks = re.findall(r'leaderboard/(\w+)\?player=ann">[^<]+</a></td>\s*<td class="num">(\d+)'
                       r'</td><td class="num">(\d+)</td>', body)
    assert [(game, rank) for game, _, rank in ranks] == [("novaglide", "2"), ("uttt", "1")]
    assert await core.ratings.rank(ann.id, "novaglide") == 2
    chart = body[body.index('<svg class="chart"'):body.index("</svg>")]
    assert chart.count("<path") == 2 and 'class="series uttt"' in chart
    first_path = re.search(r'class="series novaglide" d="([^"]+)"', chart).group(1)
    assert first_path.startswith("M")
    history = body[body.index('id="history"'):]
    assert history.count("/matches/") == 3  # newest three of five
    assert "/players/b%2Fo%3Fb%23" in body  # names with / ? # link to themselves
    older = re.search(r'href="(/players/ann\?before=\d+)" rel="next"', body).group(1)
    code, _, body = await get(core, older)
    assert code == 200 and body[body.index('id="history"'):].count("/matches/") == 2
    code, _, body = await get(core, "/players/b%2Fo%3Fb%23")
    assert code == 200 and "b/o?b#" in body and "offline" in body
    code, headers, _ = await get(core, "/players?name=ann")
    assert code == 303 and headers.getRawHeaders(b"location") == [b"/players/ann"]
    assert (await get(core, "/players/nobody"))[0] == 404
    assert (await get(core, "/players/ann?before=zz"))[0] == 400


@pytest_twisted.ensureDeferred
async def test_match_page_and_escaping(core):
    ann = await core.accounts.register("ann", "pw", "h:1")
    evil = await core.accounts.register(EVIL, "pw", "h:1")
    recorded = await core.ratings.record_match(MatchResult(
        "novaglide", [MatchPlayer(evil.id, "win", 3), MatchPlayer(ann.id, "loss", 1)],
        "<b>time</b>", k_factor=40))
    code, _, body = await get(core, "/matches/%d" % recorded.match_id)
    assert code == 200 and "<script>x" not in body and "<b>time" not in body
    assert "&lt;b&gt;time&lt;/b&gt;" in body and "1000 → 1020" in body
    code, _, body = await get(core, "/players/" + EVIL.replace("/", "%2F"))
    assert code == 200 and "<script>x" not in body
    assert (await get(core, "/matches/999"))[0] == 404
    assert (await get(core, "/matches/abc"))[0] == 404


def test_websocket_port_of_endpoints():
    from gamed.web.play import websocket_port

    assert websocket_port("tcp:5556") == 5556
    assert websocket_port("tcp:port=81:interface=127.0.0.1") == 81
    assert websocket_port("ssl:443:privateKey=k.pem") == 443
    assert websocket_port("systemd:domain=INET:index=0") is None
    assert websocket_port("") is None


@pytest_twisted.ensureDeferred
async def test_play_page_names_the_websocket(core):
    code, _, body = await get(core, "/play/uttt")
    assert code == 200 and 'data-websocket-port="%s"' % core.config.uttt.websocket.split(":")[1] \
        in body and "/static/uttt.js" in body
    assert (await get(core, "/play/chess"))[0] == 404
    code, _, js = await get(core, "/static/uttt.js")
    assert code == 200 and "innerHTML" not in js  # names are set as text only


@pytest_twisted.ensureDeferred
async def test_play_page_without_a_uttt_websocket(core):
    from gamed.core.config import set_option

    core.config = set_option(core.config, "uttt", "websocket", "")
    assert (await get(core, "/play/uttt"))[0] == 404
    core.config = set_option(core.config, "http", "play_websocket_url", "wss://example/ws")
    code, _, body = await get(core, "/play/uttt")
    assert code == 200 and 'data-websocket-url="wss://example/ws"' in body


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_pages_read_sqlite_beside_a_writer(core):
    """The pages' read-only database reads while another connection holds the write lock
    (the game's writes and the pages do not queue behind each other)."""
    import sqlite3

    from gamed.web.reads import PageReads, reader_database

    await core.accounts.register("ann", "pw", "h:1")
    reader = reader_database(core)
    assert reader is not core.database and reader.read_only
    reader.start()
    path = core.database.engine.url.path
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a write transaction in progress
        writer.execute("UPDATE accounts SET banned = 1")
        account = await PageReads(reader).find_account("ann")
        assert account is not None and not account.banned  # the last committed state
        writer.execute("COMMIT")
        assert (await PageReads(reader).find_account("ann")).banned
    finally:
        writer.close()
        reader.close()
