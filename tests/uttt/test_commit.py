"""GroupCommit: one batch in flight, the rest batched behind it, failures isolated."""

from twisted.internet import defer

from gamed.uttt.commit import GroupCommit


class Writer:
    def __init__(self):
        self.calls = []
        self.fail_with = None

    def __call__(self, ops):
        d = defer.Deferred()
        self.calls.append((list(ops), d))
        return d

    def finish(self, index=-1):
        ops, d = self.calls[index]
        bad = [op for op in ops if op == self.fail_with]
        if bad:
            d.errback(RuntimeError("bad op %r" % bad[0]))
        else:
            d.callback(["done-%s" % op for op in ops])


def test_writes_arriving_during_a_commit_go_together_in_order():
    writer = Writer()
    commit = GroupCommit(writer)
    results = []
    first = commit.submit("a")
    first.addCallback(results.append)
    later = [commit.submit(op) for op in "bcd"]
    for d in later:
        d.addCallback(results.append)
    assert [ops for ops, _ in writer.calls] == [["a"]]
    writer.finish()
    assert results == ["done-a"]
    assert [ops for ops, _ in writer.calls] == [["a"], ["b", "c", "d"]]
    drained = commit.drained()
    assert not drained.called
    writer.finish()
    assert results == ["done-a", "done-b", "done-c", "done-d"] and drained.called


def test_a_failed_batch_is_retried_one_by_one_so_one_bad_write_fails_alone():
    writer = Writer()
    writer.fail_with = "bad"
    commit = GroupCommit(writer)
    outcomes = {}
    commit.submit("first")
    for op in ("x", "bad", "y"):
        commit.submit(op).addCallbacks(
            lambda r, op=op: outcomes.__setitem__(op, r),
            lambda f, op=op: outcomes.__setitem__(op, "failed"))
    writer.finish()  # "first"
    writer.finish()  # ["x", "bad", "y"] fails as a batch
    for _ in range(3):
        writer.finish()  # then one at a time
    assert [ops for ops, _ in writer.calls][2:] == [["x"], ["bad"], ["y"]]
    assert outcomes == {"x": "done-x", "bad": "failed", "y": "done-y"}
    assert commit.drained().called


def test_batches_are_capped():
    writer = Writer()
    commit = GroupCommit(writer, max_batch=2)
    for op in "abcde":
        commit.submit(op)
    writer.finish()
    writer.finish()
    assert [ops for ops, _ in writer.calls] == [["a"], ["b", "c"], ["d", "e"]]


def test_several_batches_run_at_once_but_exclusive_writes_one_at_a_time():
    writer = Writer()
    commit = GroupCommit(writer, max_batch=2, max_in_flight=3,
                         exclusive=lambda op: op.startswith("X"))
    done = []
    for op in ("a", "b", "X1", "c", "X2", "d"):
        commit.submit(op).addCallback(done.append)
    calls = lambda: [ops for ops, _ in writer.calls]  # noqa: E731
    assert calls() == [["a"], ["b"], ["X1"]] and commit.in_flight == 3
    writer.finish(2)  # X1 commits: c and X2 may go together
    assert calls()[3:] == [["c", "X2"]]
    commit.submit("X3").addCallback(done.append)
    writer.finish(0)  # a slot frees: d goes, X3 waits for X2 (and keeps its place)
    assert calls()[4:] == [["d"]]
    writer.finish(1)
    assert len(calls()) == 5  # X3 still waits although a slot is free
    writer.finish(3)  # X2's batch commits
    assert calls()[5:] == [["X3"]]
    writer.finish(4)
    writer.finish(5)
    assert sorted(done) == sorted("done-%s" % op for op in ("a", "b", "X1", "c", "X2", "d", "X3"))
    assert commit.drained().called
