"""A player whose match runs on another node: its client repeats its input every frame,
its node forwards a change at once and a repeat only as a refresh; a node that is not up
is not paired with."""

from __future__ import annotations

import types

from twisted.internet import defer

from gamed.cluster.local import LocalCluster
from gamed.novaglide.cluster import INPUT_REFRESH, NovaglideCluster


class RecordingBus:
    def __init__(self):
        self.sent = []

    def publish(self, topic, message, nodes=None):
        self.sent.append((topic, message, list(nodes or ())))

    def subscribe(self, topic, handler):
        pass


def test_repeated_inputs_are_forwarded_only_when_changed_or_stale():
    cluster = LocalCluster("b")
    cluster.bus = RecordingBus()
    clock = types.SimpleNamespace(t=100.0)
    game = types.SimpleNamespace(now=lambda: clock.t, queue=types.SimpleNamespace(
        remove=lambda account_id: None), online={}, matches=[])
    nova = NovaglideCluster(game, cluster)
    nova._matched({"a": 7}, "a")
    right, left = [[640, 360], ["d"], "wsad"], [[640, 360], ["a"], "wsad"]
    for frame in range(6):  # 0.1 s of frames holding one direction, then a change
        clock.t = 100.0 + frame / 60
        nova.input(7, right)
    nova.input(7, left)
    inputs = [m["d"] for topic, m, nodes in cluster.bus.sent if topic == "novaglide.input"]
    assert inputs == [right, left]
    assert all(nodes == ["a"] for _, _, nodes in cluster.bus.sent)
    clock.t += INPUT_REFRESH + 0.001
    nova.input(7, left)  # held long enough: sent again (a lost message is repaired)
    assert len(cluster.bus.sent) == 3
    # a new match starts afresh: its first input is always sent
    nova._matched({"a": 7}, "c")
    nova.input(7, left)
    assert cluster.bus.sent[-1] == ("novaglide.input", {"a": 7, "d": left}, ["c"])


def test_players_of_a_node_that_is_not_up_are_not_paired():
    """A node seen gone (its entries still being purged) or not seen yet: its player is
    left waiting, the match is not started; once it is up the pair is made."""
    from gamed.novaglide.settings import NovaglideSettings

    cluster = LocalCluster("b")
    up = {"b"}
    cluster.is_up = lambda node: node in up
    started = []
    account = types.SimpleNamespace(id=1, name="ann")
    game = types.SimpleNamespace(
        now=lambda: 100.0, draining=False, settings=NovaglideSettings(),
        queue=types.SimpleNamespace(remove=lambda account_id: None),
        online={2: types.SimpleNamespace(account=types.SimpleNamespace(id=2))}, matches=[],
        core=types.SimpleNamespace(accounts=types.SimpleNamespace(
            get_account=lambda account_id: defer.succeed(account))),
        start_match=lambda one, two, r1, r2: started.append((one, two)) or
        types.SimpleNamespace(id=1, links={1: one, 2: two}))
    nova = NovaglideCluster(game, cluster)
    cluster.queue.join("novaglide", "1", {"rating": 1000, "since": 99.0, "node": "a"})
    cluster.queue.join("novaglide", "2", {"rating": 1000, "since": 99.5, "node": "b"})
    nova.pair()
    assert started == [] and len(cluster.queue._games["novaglide"]) == 2
    up.add("a")
    nova.pair()
    assert len(started) == 1 and started[0][0].node == "a"
