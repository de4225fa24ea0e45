"""Rate limits with an injected clock: a token bucket per connection, leaky buckets per key."""

from __future__ import annotations

from typing import Callable, Dict, Hashable


class TokenBucket:
    """`rate` tokens per second up to `burst`; `take()` is False when the bucket is empty."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "now")

    def __init__(self, rate: float, burst: float, now: Callable[[], float]):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.now = now
        self.stamp = now()

    def take(self, cost: float = 1.0) -> bool:
        return self.take_at(self.now(), cost)

    def take_at(self, current: float, cost: float = 1.0) -> bool:
        """`take` at a time the caller has read already (a connection reads it once per
        frame, for its idle timer too)."""
        tokens = self.tokens + (current - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = current
        if tokens >= cost:
            self.tokens = tokens - cost
            return True
        self.tokens = tokens
        return False


class LeakyBuckets:
    """One leaky bucket per key (an address, an account name), forgetting empty ones.

    Each attempt adds one unit; the bucket drains `rate` units per second; an attempt
    that would overflow `capacity` is refused (and not counted).
    """

    def __init__(self, capacity: float, rate: float, now: Callable[[], float],
                 max_keys: int = 100000):
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.now = now
        self.max_keys = max_keys
        self.levels: Dict[Hashable, tuple] = {}

    def level(self, key: Hashable) -> float:
        current = self.now()
        level, stamp = self.levels.get(key, (0.0, current))
        return max(0.0, level - (current - stamp) * self.rate)

    def allow(self, key: Hashable) -> bool:
        level = self.level(key)
        if level + 1.0 > self.capacity:
            return False
        if len(self.levels) >= self.max_keys:
            self._forget_drained()
        self.levels[key] = (level + 1.0, self.now())
        return True

    def full(self, key: Hashable) -> bool:
        """True when one more attempt would overflow (nothing is added)."""
        return self.level(key) + 1.0 > self.capacity

    def retry_after(self, key: Hashable) -> float:
        """Seconds until one more attempt fits."""
        excess = self.level(key) + 1.0 - self.capacity
        return max(0.0, excess / self.rate) if self.rate > 0 else float("inf")

    def _forget_drained(self) -> None:
        for key in [k for k in self.levels if self.level(k) == 0.0]:
            del self.levels[key]
