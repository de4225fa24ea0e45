"""Rating-aware pairing of random match requests (pure: time is passed in).

A waiting player accepts opponents whose rating lies within a window around its own; the
window starts at `base` and widens by `widen_per_second` while it waits, up to `widest`.
A new request is paired with the closest waiting player whose window (or its own)
admits it; the oldest waiting player wins ties. `pairs()` re-checks the queue as windows
widen, so two waiting players meet without a third request.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Optional

import attrs


@attrs.frozen
class Seeker:
    """One player waiting for a random opponent."""

    key: Hashable  # the account id
    rating: float
    since: float  # clock seconds when it started waiting


@attrs.frozen
class Window:
    base: float = 100.0
    widen_per_second: float = 25.0
    widest: float = 1000.0

    def width(self, seeker: Seeker, now: float) -> float:
        waited = max(0.0, now - seeker.since)
        return min(self.widest, self.base + self.widen_per_second * waited)

    def admits(self, a: Seeker, b: Seeker, now: float) -> bool:
        gap = abs(a.rating - b.rating)
        return gap <= self.width(a, now) or gap <= self.width(b, now)


def best_opponent(seeker: Seeker, waiting: Iterable[Seeker], now: float,
                  window: Window) -> Optional[Seeker]:
    """The waiting player `seeker` should meet now, or None."""
    best = None
    for candidate in waiting:
        if candidate.key == seeker.key or not window.admits(seeker, candidate, now):
            continue
        rank = (abs(candidate.rating - seeker.rating), candidate.since)
        if best is None or rank < best[0]:
            best = (rank, candidate)
    return None if best is None else best[1]


def pairs(waiting: Iterable[Seeker], now: float, window: Window) -> list:
    """Pairs (earlier, later) to start now, oldest waiting players served first."""
    queue = sorted(waiting, key=lambda s: s.since)
    taken: set = set()
    found = []
    for seeker in queue:
        if seeker.key in taken:
            continue
        free = [s for s in queue if s.key not in taken and s.key != seeker.key]
        opponent = best_opponent(seeker, free, now, window)
        if opponent is not None:
            taken.update((seeker.key, opponent.key))
            found.append((seeker, opponent) if seeker.since <= opponent.since
                         else (opponent, seeker))
    return found
