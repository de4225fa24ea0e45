"""Nodes built in process against Redis: presence, take-over, queue, bus, dead nodes and
Redis going away."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.cluster.redisutil import PrivateRedis, until


async def joined(*nodes):
    await until(lambda: all(n.link.up for n in nodes), what="nodes connected")
    names = {n.node for n in nodes}
    await until(lambda: all(n.live == names - {n.node} for n in nodes), what="nodes see each other")


@pytest_twisted.ensureDeferred
async def test_presence_is_seen_on_every_node_and_changes_are_watched(make_node):
    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    seen = []
    b.presence.watch(lambda account, game, online: seen.append((account, game, online)))
    a.presence.arrived(7, "uttt")
    await until(lambda: b.presence.is_online(7, "uttt"), what="b sees 7 online")
    assert b.presence.games_of(7) == ["uttt"]
    assert b.presence.nodes_of(7, "uttt") == {"a"} and not b.presence.here(7)
    assert b.presence.count("uttt") == 1 and not b.presence.is_online(7, "rooms")
    # the same account arriving on b too is no change of the cluster's view
    b.presence.arrived(7, "uttt")
    a.presence.left(7, "uttt")
    await until(lambda: not b.presence.nodes_of(7, "uttt"), what="a's session gone on b")
    assert b.presence.is_online(7, "uttt")
    b.presence.left(7, "uttt")
    assert not b.presence.is_online(7)
    assert seen == [(7, "uttt", True), (7, "uttt", False)]


@pytest_twisted.ensureDeferred
async def test_a_node_joining_late_gets_the_snapshot(make_node):
    a = make_node("a")
    await until(lambda: a.link.up)
    a.presence.arrived(1, "rooms")
    a.presence.arrived(2, "uttt")
    a.presence.left(2, "uttt")
    b = make_node("b")
    await joined(a, b)
    await until(lambda: b.presence.is_online(1, "rooms"), what="snapshot")
    assert not b.presence.is_online(2)


@pytest_twisted.ensureDeferred
async def test_a_dead_node_is_forgotten_after_the_timeout(make_node, redis_prefix):
    from tests.cluster.redisutil import BlockingRedis

    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    a.presence.arrived(5, "novaglide")
    await a.queue.join("uttt", "5", {"rating": 1000})
    await until(lambda: b.presence.is_online(5), what="b sees 5")
    # a dies without a word: its heartbeats stop, its keys stay until they expire
    a._beat.stop()
    await a.link.stop()
    await until(lambda: not b.presence.is_online(5), what="b forgets 5", timeout=30)
    assert "a" not in b.live
    redis = BlockingRedis()
    assert redis.keys(redis_prefix + "presence:a") == []
    assert (await b.queue.entries("uttt")) == {}
    assert redis.call("SISMEMBER", redis_prefix + "nodes", "a") == 0
    redis.close()


@pytest_twisted.ensureDeferred
async def test_a_second_login_on_another_node_takes_over(make_node):
    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    ended = defer.Deferred()
    a.presence.on_taken_over("novaglide", ended.callback)
    a.presence.arrived(9, "novaglide")
    await until(lambda: b.presence.is_online(9, "novaglide"))
    b.presence.take_over("novaglide", 9)
    assert await ended == 9


@pytest_twisted.ensureDeferred
async def test_queue_take_is_all_or_nothing_across_nodes(make_node):
    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    await a.queue.join("uttt", "1", {"rating": 1000})
    await b.queue.join("uttt", "2", {"rating": 1100})
    entries = await a.queue.entries("uttt")
    assert entries == {"1": {"rating": 1000, "node": "a"}, "2": {"rating": 1100, "node": "b"}}
    first, second = await defer.gatherResults([a.queue.take("uttt", ["1", "2"]),
                                                b.queue.take("uttt", ["2", "1"])])
    assert sorted([first is None, second is None]) == [False, True]
    assert (await b.queue.take("uttt", ["1"])) is None
    assert (await a.queue.entries("uttt")) == {}
    await until(lambda: "2" not in b.queue.mine.get("uttt", {}), what="b told of the take")


@pytest_twisted.ensureDeferred
async def test_the_bus_reaches_the_named_node_or_all_in_order(make_node):
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    await joined(a, b, c)
    got = {"b": [], "c": []}
    b.bus.subscribe("t", lambda m, sender: got["b"].append((sender, m["i"])))
    c.bus.subscribe("t", lambda m, sender: got["c"].append((sender, m["i"])))
    a.bus.subscribe("t", lambda m, sender: pytest.fail("a node hears itself"))
    for i in range(50):
        a.bus.publish("t", {"i": i}, ["b"] if i % 2 else None)
    await until(lambda: len(got["b"]) == 50 and len(got["c"]) == 25, what="messages")
    assert got["b"] == [("a", i) for i in range(50)]
    assert got["c"] == [("a", i) for i in range(0, 50, 2)]


@pytest_twisted.ensureDeferred
async def test_redis_going_away_is_reported_and_the_node_rejoins(make_node, tmp_path):
    redis = PrivateRedis(tmp_path).start()
    try:
        a, b = make_node("a", redis.url), make_node("b", redis.url)
        await joined(a, b)
        a.presence.arrived(3, "uttt")
        await until(lambda: b.presence.is_online(3))
        assert a.problem() is None
        redis.stop()
        await until(lambda: a.problem() is not None and b.problem() is not None,
                    what="the outage noticed")
        assert "redis" in a.problem()
        # a's players keep playing meanwhile; their changes are kept for the rejoin
        a.presence.arrived(4, "rooms")
        a.presence.left(3, "uttt")
        assert a.presence.is_online(4) and not a.presence.is_online(3)
        redis.start()  # an empty Redis: everything is written again
        await joined(a, b)
        await until(lambda: b.presence.is_online(4, "rooms") and not b.presence.is_online(3),
                    what="b sees a's players after the rejoin", timeout=30)
        assert a.problem() is None and b.problem() is None
    finally:
        redis.stop()


def gone_log(node):
    seen = []
    node.on_node_gone(seen.append)
    return seen


@pytest_twisted.ensureDeferred
async def test_a_dead_node_is_told_to_the_games_once(make_node):
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    await joined(a, b, c)
    on_b, on_c = gone_log(b), gone_log(c)
    a._beat.stop()
    await a.link.stop()  # a dies without a word
    await until(lambda: on_b and on_c, what="b and c told a is gone", timeout=30)
    for _ in range(10):  # more heartbeats, the dead-node news: still once
        await until(lambda: True)
        await b.heartbeat()
    assert on_b == ["a"] and on_c == ["a"]


@pytest_twisted.ensureDeferred
async def test_a_node_that_left_or_restarted_is_gone(make_node):
    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    on_b = gone_log(b)
    a.bus.publish("x", {})  # b learns a's run from its messages too
    await until(lambda: "a" in b.incarnations, what="a's run known")
    # a is killed and restarts under the same name within the timeout (its heartbeat
    # key never expires: the new run is told apart by its incarnation)
    a._beat.stop()
    await a.link.stop()
    again = make_node("a")
    await until(lambda: on_b == ["a"], what="the old run of a gone", timeout=30)
    await until(lambda: b.incarnations.get("a") == again.incarnation, what="the new run")
    await again.stopService()  # drained: gone at once, not after the timeout
    await until(lambda: on_b == ["a", "a"], what="a left", timeout=0.9)


@pytest_twisted.ensureDeferred
async def test_a_node_counted_dead_drops_its_links_too_and_joins_again(make_node):
    """A node silent past the timeout (a long pause) but alive: the others bury it; when
    it beats again it learns it, tells its games the others are gone (they dropped what
    they held for it) and joins again, players and all."""
    a, b = make_node("a"), make_node("b")
    await joined(a, b)
    on_a, on_b = gone_log(a), gone_log(b)
    a.presence.arrived(11, "rooms")
    await until(lambda: b.presence.is_online(11), what="b sees 11")
    a._beat.stop()  # a stops beating but keeps its link (paused, not dead)
    await until(lambda: on_b == ["a"], what="b buries a", timeout=30)
    a._beat.start(a.settings.heartbeat, now=True)
    # told by b's news, or by its next heartbeat finding itself out of the set of nodes
    await until(lambda: on_a == ["b"], what="a learns it was buried", timeout=30)
    await until(lambda: b.presence.is_online(11, "rooms") and a.live == {"b"},
                what="a joined again", timeout=30)
    assert on_b == ["a"]


@pytest_twisted.ensureDeferred
async def test_a_cut_off_node_pairs_its_own_new_entries_and_shares_them_when_back(
        make_node, tmp_path):
    redis = PrivateRedis(tmp_path).start()
    try:
        a, b = make_node("a", redis.url), make_node("b", redis.url)
        await joined(a, b)
        await a.queue.join("uttt", "1", {"rating": 1})  # waits before the cut
        await a.queue.join("uttt", "5", {"rating": 5})
        redis.stop()
        await until(lambda: not a.link.up, what="a cut off")
        # joined meanwhile: known to a alone, so a may pair them
        for key in ("2", "3", "4"):
            await a.queue.join("uttt", key, {"rating": int(key)})
        await a.queue.leave("uttt", "4")
        await a.queue.leave("uttt", "5")
        assert set(await a.queue.entries("uttt")) == {"2", "3"}
        assert (await a.queue.take("uttt", ["1", "2"])) is None  # 1 may be taken elsewhere
        assert set(await a.queue.take("uttt", ["2", "3"])) == {"2", "3"}
        await a.queue.join("uttt", "6", {"rating": 6})
        assert a.queue.unlisted == {"uttt": {"5"}}  # deleted in Redis when back
        redis.start()  # an empty Redis: a's own entries are written again
        await joined(a, b)
        await until(lambda: not a.queue.unshared and not a.queue.unlisted, what="a rejoined")
        entries = await b.queue.entries("uttt")
        assert {key: entry["node"] for key, entry in entries.items()} == {"1": "a", "6": "a"}
    finally:
        redis.stop()
