"""One node alone: the in-process presence, queue and bus (today's behaviour)."""

from gamed.cluster.local import LocalCluster


def fired(d):
    results = []
    d.addBoth(results.append)
    assert results, "a local answer is already fired"
    return results[0]


def test_presence_counts_sessions_and_tells_watchers_once():
    cluster = LocalCluster("solo")
    presence, seen = cluster.presence, []
    presence.watch(lambda *change: seen.append(change))
    presence.arrived(1, "uttt")
    presence.arrived(1, "uttt")
    presence.arrived(1, "rooms")
    presence.left(1, "uttt")
    assert presence.is_online(1, "uttt") and presence.games_of(1) == ["rooms", "uttt"]
    assert presence.here(1) and presence.nodes_of(1, "uttt") == set()
    presence.left(1, "uttt")
    presence.left(1, "uttt")  # one too many changes nothing
    presence.left(1, "rooms")
    assert not presence.is_online(1) and presence.count("uttt") == 0
    assert seen == [(1, "uttt", True), (1, "rooms", True), (1, "uttt", False),
                    (1, "rooms", False)]
    assert cluster.problem() is None and not cluster.clustered


def test_queue_take_is_all_or_nothing_and_bus_reaches_nobody():
    cluster = LocalCluster()
    queue = cluster.queue
    fired(queue.join("uttt", "1", {"rating": 1000}))
    fired(queue.join("uttt", "2", {"rating": 1200}))
    assert fired(queue.take("uttt", ["1", "3"])) is None
    assert fired(queue.entries("uttt")) == {"1": {"rating": 1000}, "2": {"rating": 1200}}
    assert fired(queue.take("uttt", ["2", "1"])) == {"1": {"rating": 1000},
                                                     "2": {"rating": 1200}}
    fired(queue.leave("uttt", "9"))
    assert fired(queue.entries("uttt")) == {}
    heard = []
    cluster.bus.subscribe("t", lambda m, sender: heard.append(m))
    cluster.bus.publish("t", {"x": 1})
    assert heard == []
