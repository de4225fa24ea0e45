"""The rating-aware queue (pure): closest ratings first, within a window that widens with
waiting time; one entry per account."""

from __future__ import annotations

from typing import Optional

import attrs


@attrs.define
class Waiting:
    account_id: int
    rating: float
    since: float


@attrs.define
class Queue:
    #: accepted rating gap at first, its growth per second of waiting, its maximum
    window: float = 100.0
    widen: float = 50.0
    max_window: float = 1000.0
    entries: dict = attrs.Factory(dict)  # account id -> Waiting

    def add(self, account_id: int, rating: float, now: float) -> None:
        if account_id not in self.entries:  # queueing twice keeps the first place
            self.entries[account_id] = Waiting(account_id, rating, now)

    def remove(self, account_id: int) -> bool:
        return self.entries.pop(account_id, None) is not None

    def __contains__(self, account_id: int) -> bool:
        return account_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def allowed_gap(self, entry: Waiting, now: float) -> float:
        return min(self.max_window, self.window + self.widen * max(0.0, now - entry.since))

    def pop_pair(self, now: float) -> Optional[tuple]:
        """The closest acceptable pair (both windows must accept the gap), or None. The
        pair need not be neighbours in rating: a newcomer's narrow window between two
        long waiters does not keep them apart."""
        ordered = sorted(self.entries.values(), key=lambda e: (e.rating, e.since))
        windows = [self.allowed_gap(entry, now) for entry in ordered]
        best = None
        for i, left in enumerate(ordered):
            for j in range(i + 1, len(ordered)):
                gap = ordered[j].rating - left.rating
                if gap > windows[i] or (best is not None and gap >= best[0]):
                    break  # further right is only farther
                if gap <= windows[j]:
                    best = (gap, left, ordered[j])
                    break
        if best is None:
            return None
        _, left, right = best
        del self.entries[left.account_id]
        del self.entries[right.account_id]
        # the one who waited longer is player 1
        return (left, right) if left.since <= right.since else (right, left)

    def pairs(self, now: float) -> list:
        found = []
        while True:
            pair = self.pop_pair(now)
            if pair is None:
                return found
            found.append(pair)
