"""Group commit: writes queue while batches are in flight, then go as one batch.

Every match change must be durable before it is announced, but a commit per move would cap
throughput at the database's commit rate. `GroupCommit` keeps at most `max_in_flight`
transactions running (1 on SQLite, which has one writer; a few on PostgreSQL, whose
commits wait on the disk); what arrives meanwhile is written together in the next batch.

Order: operations start in submission order. The game never submits a second write for
a match before the first is committed, so concurrent batches never touch the same match;
operations marked `exclusive` (results that update ratings) never run concurrently with
each other, so two results of one player cannot race on its rating row. A failed batch is
retried one operation at a time, so one bad write fails alone.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Optional

from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="gamed.uttt.commit")


class GroupCommit:
    def __init__(self, write_batch: Callable[[list], defer.Deferred], max_batch: int = 512,
                 on_batch: Optional[Callable[[int], None]] = None, max_in_flight: int = 1,
                 exclusive: Callable[[object], bool] = lambda op: False):
        self.write_batch = write_batch
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.max_in_flight = max(1, max_in_flight)
        self.exclusive = exclusive
        self.pending: deque = deque()
        self.in_flight = 0
        self.exclusive_in_flight = False
        self.solo = 0  # operations to retry one by one after a failed batch
        self._idle: list = []

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    def submit(self, op) -> defer.Deferred:
        """A Deferred firing with the operation's result once its batch is committed."""
        done = defer.Deferred()
        self.pending.append((op, done))
        self._start()
        return done

    def drained(self) -> defer.Deferred:
        """Fires when nothing is queued or in flight."""
        if not self.in_flight and not self.pending:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._idle.append(waiter)
        return waiter

    def _start(self) -> None:
        while self.pending and self.in_flight < self.max_in_flight:
            batch = self._take()
            if not batch:
                return
            self._flush(batch)

    def _take(self) -> list:
        limit = 1 if self.solo else self.max_batch
        batch, exclusive = [], False
        while self.pending and len(batch) < limit:
            op = self.pending[0][0]
            if self.exclusive(op):
                if self.exclusive_in_flight:
                    break  # wait for the running result batch; keep the order
                exclusive = True
            batch.append(self.pending.popleft())
        if self.solo and batch:
            self.solo -= 1
        if exclusive:
            self.exclusive_in_flight = True
        return batch

    def _flush(self, batch: list) -> None:
        self.in_flight += 1
        exclusive = any(self.exclusive(op) for op, _ in batch)
        try:
            written = self.write_batch([op for op, _ in batch])
        except Exception:
            written = defer.fail()
        written.addCallbacks(self._written, self._failed, (batch, exclusive),
                             errbackArgs=(batch, exclusive))

    def _written(self, results, batch, exclusive) -> None:
        self._finished(exclusive)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        for (_, done), result in zip(batch, results):
            done.callback(result)
        self._next()

    def _failed(self, failure, batch, exclusive) -> None:
        self._finished(exclusive)
        if len(batch) > 1:
            log.warn("a batch of {count} writes failed ({error}); retrying them one by one",
                     count=len(batch), error=failure.getErrorMessage())
            self.pending.extendleft(reversed(batch))
            self.solo += len(batch)
        else:
            batch[0][1].errback(failure)
        self._next()

    def _finished(self, exclusive: bool) -> None:
        self.in_flight -= 1
        if exclusive:
            self.exclusive_in_flight = False

    def _next(self) -> None:
        self._start()
        if not self.in_flight and not self.pending:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)
