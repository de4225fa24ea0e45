"""Leaderboard ranks from an in-memory copy of every game's order, kept up to date from
the matches recorded since (the pages' ranks: a player page shows one per game).

Counting the players ahead of someone in SQL reads that part of the leaderboard index:
half of it on average, 1.8 ms a player page with 10k players (SQLite), growing with the
players. `RankIndex` holds each game's sorted keys (-rating, account id) and answers a
rank with a bisection. Inside each page's transaction, `refresh(cur)` brings it up to
date: nothing to do when no match was recorded since (one primary-key lookup), else the
ratings of the players of the ranked matches recorded since, re-sorted in (a match is
the only way a rating changes). Every `full_every` seconds (or more, if a full read is
slow) it is read whole again, which also drops accounts deleted meanwhile.

On PostgreSQL, match ids are taken before commit, so a match may become visible after a
higher one: once a second a refresh reads the last LOOKBACK matches again (setting a
rating is idempotent), so such a match is in the ranks within a second. SQLite commits
in id order.

Thread-safe: pages read on several pool threads (PostgreSQL); one lock, held briefly.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Callable, Optional

from gamed.store.database import Cursor

FULL_EVERY = 30.0  # seconds between full reads (at least)
FULL_COST_FACTOR = 100  # ... and at least this many times the last full read's duration
LOOKBACK = 64  # matches read again (PostgreSQL) ...
LOOKBACK_EVERY = 1.0  # ... once a second
MAX_DELTA = 5000  # more new matches than this: read everything instead


class RankIndex:
    def __init__(self, full_every: float = FULL_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        self.full_every = full_every
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict = {}  # game -> sorted [(-rating, account_id)]
        self._current: dict = {}  # (game, account_id) -> its key in _keys[game]
        self._marker: Optional[int] = None  # highest match id read
        self._next_full = 0.0
        self._last_lookback = 0.0

    def refresh(self, cur: Cursor) -> None:
        """Bring the index up to the database's state as `cur` sees it."""
        with self._lock:
            marker = cur.scalar("SELECT MAX(id) FROM matches") or 0
            now = self.clock()
            if (self._marker is None or now >= self._next_full
                    or marker - self._marker > MAX_DELTA):
                self._read_all(cur, marker)
                return
            since = self._marker
            if cur.engine.name != "sqlite" and now >= self._last_lookback + LOOKBACK_EVERY:
                since = max(0, since - LOOKBACK)
                self._last_lookback = now
            if since != marker:
                self._read_since(cur, since, marker)

    def rank(self, game: str, rating: float, account_id: int) -> Optional[int]:
        """1 + the players ahead (higher rating, or equal with a lower account id), as
        `ratings.rank_txn` counts them; None for a game nobody is rated in."""
        with self._lock:
            keys = self._keys.get(game)
            if keys is None:
                return None
            return bisect.bisect_left(keys, (-float(rating), account_id)) + 1

    def page(self, game: str, offset: int, limit: int) -> list:
        """The account ids at ranks offset+1 .. offset+limit, in order."""
        with self._lock:
            return [key[1] for key in self._keys.get(game, ())[offset:offset + limit]]

    def count(self, game: str) -> int:
        """How many players have a rating in `game`."""
        return len(self._keys.get(game, ()))

    # -- under the lock -----------------------------------------------------------------------

    def _read_all(self, cur: Cursor, marker: int) -> None:
        started = time.monotonic()
        keys: dict = {}
        current: dict = {}
        for game, rating, account_id in cur.execute(
                "SELECT game, rating, account_id FROM ratings"
                " ORDER BY game, rating DESC, account_id").fetchall():
            key = (-float(rating), account_id)
            keys.setdefault(game, []).append(key)
            current[(game, account_id)] = key
        self._keys, self._current, self._marker = keys, current, marker
        took = time.monotonic() - started
        self._next_full = self.clock() + max(self.full_every, FULL_COST_FACTOR * took)

    def _read_since(self, cur: Cursor, since: int, marker: int) -> None:
        for game, account_id, rating in cur.execute(
                "SELECT r.game, r.account_id, r.rating FROM matches m"
                " JOIN match_players mp ON mp.match_id = m.id"
                " JOIN ratings r ON r.account_id = mp.account_id AND r.game = m.game"
                " WHERE m.id > ? AND m.id <= ? AND m.ranked = 1", (since, marker)).fetchall():
            self._set(game, account_id, -float(rating))
        self._marker = marker

    def _set(self, game: str, account_id: int, negative_rating: float) -> None:
        key = (negative_rating, account_id)
        old = self._current.get((game, account_id))
        if old == key:
            return
        keys = self._keys.setdefault(game, [])
        if old is not None:
            at = bisect.bisect_left(keys, old)
            if at < len(keys) and keys[at] == old:
                del keys[at]
        bisect.insort(keys, key)
        self._current[(game, account_id)] = key
