"""How many public pages are built at once: the rest wait briefly in a bounded queue or
are told to come back (503 with Retry-After) at once.

Pages share the reactor (and, on PostgreSQL, the database pool) with the games. Without
a bound, a burst of visitors queues every page's database read and rendering at once:
moves wait behind them, and the pages themselves answer seconds late. With it, at most
`concurrency` pages are being built (read, then rendered) while games go on between
them; `queue` more wait their turn, each at most `max_wait` seconds; a visitor beyond
that gets a 503 with Retry-After now rather than a page after seconds.
"""

from __future__ import annotations

import collections

from twisted.internet import defer


class PageRefused(Exception):
    """Too many pages waiting, or this one waited too long: answer 503."""


class PageGate:
    def __init__(self, clock, concurrency: int = 4, queue: int = 64, max_wait: float = 0.5):
        self.clock = clock
        self.concurrency = concurrency
        self.queue = queue
        self.max_wait = max_wait
        self.active = 0
        self.waiting: collections.deque = collections.deque()  # (Deferred, DelayedCall)
        #: pages refused since start (a 503 each), by why: "full" or "waited"
        self.refused = {"full": 0, "waited": 0}

    def enter(self) -> defer.Deferred:
        """Fires (None) when the page may be built; fails with PageRefused when it may not.
        Each success must be followed by one `leave()`."""
        if self.active < self.concurrency:
            self.active += 1
            return defer.succeed(None)
        if len(self.waiting) >= self.queue:
            self.refused["full"] += 1
            return defer.fail(PageRefused("full"))
        d = defer.Deferred()
        entry = [d, None]
        entry[1] = self.clock.callLater(self.max_wait, self._expire, entry)
        self.waiting.append(entry)
        return d

    def leave(self) -> None:
        while self.waiting:
            d, timer = self.waiting.popleft()
            timer.cancel()
            d.callback(None)  # the slot passes on: `active` stays
            return
        self.active -= 1

    def _expire(self, entry) -> None:
        self.waiting.remove(entry)
        self.refused["waited"] += 1
        entry[0].errback(PageRefused("waited"))
