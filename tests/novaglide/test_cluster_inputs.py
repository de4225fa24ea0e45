"""A player whose match runs on another node: its client repeats its input every frame,
its node forwards a change at once and a repeat only as a refresh."""

from __future__ import annotations

import types

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
