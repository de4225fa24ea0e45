"""Group commit: write operations queue while one batch is in flight, then go as one batch.

Every match change must be durable before it is announced, but a commit per move would cap
throughput at the database's commit rate. `GroupCommit` keeps at most one transaction in
flight; what arrives meanwhile is written together in the next one. The order of
operations is kept, so the writes of one match never overtake each other. A failed batch
is retried one operation at a time, so one bad write fails alone.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="gamed.uttt.commit")


class GroupCommit:
    def __init__(self, write_batch: Callable[[list], defer.Deferred], max_batch: int = 512,
                 on_batch: Callable[[int, float], None] | None = None, clock=None):
        self.write_batch = write_batch
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.clock = clock
        self.pending: deque = deque()
        self.busy = False
        self.solo = 0  # operations to retry one by one after a failed batch
        self._idle: list = []

    def submit(self, op) -> defer.Deferred:
        """A Deferred firing with the operation's result once its batch is committed."""
        done = defer.Deferred()
        self.pending.append((op, done))
        if not self.busy:
            self._flush()
        return done

    def drained(self) -> defer.Deferred:
        """Fires when nothing is queued or in flight."""
        if not self.busy and not self.pending:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._idle.append(waiter)
        return waiter

    def _flush(self) -> None:
        size = 1 if self.solo else min(self.max_batch, len(self.pending))
        if self.solo:
            self.solo -= 1
        batch = [self.pending.popleft() for _ in range(size)]
        self.busy = True
        started = self.clock.seconds() if self.clock is not None else 0.0
        try:
            written = self.write_batch([op for op, _ in batch])
        except Exception:
            written = defer.fail()
        written.addCallbacks(self._written, self._failed, (batch, started),
                             errbackArgs=(batch,))

    def _written(self, results, batch, started) -> None:
        if self.on_batch is not None:
            elapsed = self.clock.seconds() - started if self.clock is not None else 0.0
            self.on_batch(len(batch), elapsed)
        for (_, done), result in zip(batch, results):
            done.callback(result)
        self._next()

    def _failed(self, failure, batch) -> None:
        if len(batch) > 1:
            log.warn("a batch of {count} writes failed ({error}); retrying them one by one",
                     count=len(batch), error=failure.getErrorMessage())
            self.pending.extendleft(reversed(batch))
            self.solo += len(batch)
        else:
            batch[0][1].errback(failure)
        self._next()

    def _next(self) -> None:
        self.busy = False
        if self.pending:
            self._flush()
            return
        waiters, self._idle = self._idle, []
        for waiter in waiters:
            waiter.callback(None)
