"""Rate limit buckets and Elo arithmetic (pure)."""

from hypothesis import given, strategies as st

from gamed.core.elo import elo_changes, expected_score
from gamed.core.ratelimit import LeakyBuckets, TokenBucket


class Now:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_token_bucket_refills_up_to_burst():
    now = Now()
    bucket = TokenBucket(rate=2, burst=3, now=now)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now.t = 0.5
    assert bucket.take() and not bucket.take()
    now.t = 100
    assert sum(bucket.take() for _ in range(10)) == 3


@given(rate=st.floats(0, 1e7), burst=st.integers(0, 10 ** 7),
       steps=st.lists(st.tuples(st.floats(0, 100), st.sampled_from([1.0, 0.5, 3.0]))))
def test_take_at_is_the_token_bucket_of_its_first_version(rate, burst, steps):
    """take_at (the time read by the caller) gives what `take` gave before it existed."""
    now = Now()
    bucket = TokenBucket(rate, burst, now)
    tokens, stamp = float(burst), 0.0
    for delay, cost in steps:
        now.t += delay
        tokens = min(float(burst), tokens + (now.t - stamp) * float(rate))
        stamp = now.t
        expected = tokens >= cost
        if expected:
            tokens -= cost
        assert bucket.take_at(now.t, cost) is expected
        assert bucket.tokens == tokens


def test_leaky_buckets_per_key():
    now = Now()
    buckets = LeakyBuckets(capacity=2, rate=1, now=now)
    assert buckets.allow("a") and buckets.allow("a") and not buckets.allow("a")
    assert buckets.allow("b")
    assert 0 < buckets.retry_after("a") <= 1
    now.t = 1.0
    assert buckets.allow("a") and not buckets.allow("a")


def test_elo_known_values():
    assert expected_score(1000, 1000) == 0.5
    assert elo_changes(1000, 1000, 1, 40) == (1020, 980)
    a, b = elo_changes(1200, 1000, 0.5, 20)
    assert a < 1200 and b > 1000


@given(st.floats(100, 3000), st.floats(100, 3000), st.sampled_from([0, 0.5, 1]),
       st.floats(1, 64))
def test_elo_is_zero_sum(ra, rb, score, k):
    a, b = elo_changes(ra, rb, score, k)
    assert abs((a + b) - (ra + rb)) < 1e-6
    assert abs(a - ra) <= k
