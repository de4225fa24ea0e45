"""The rating queue (pure): closest first, a window that widens, one entry per account."""

import itertools
import random

from gamed.novaglide.matchmaking import Queue


def test_closest_ratings_pair_first_and_the_longer_waiter_is_player_one():
    queue = Queue(window=100, widen=50, max_window=1000)
    queue.add(1, 1000, now=0)
    queue.add(2, 1300, now=1)
    queue.add(3, 1020, now=2)
    first, second = queue.pop_pair(now=2)
    assert (first.account_id, second.account_id) == (1, 3)
    assert queue.pop_pair(now=2) is None and len(queue) == 1


def test_the_window_widens_while_players_wait():
    queue = Queue(window=100, widen=50, max_window=1000)
    queue.add(1, 1000, now=0)
    queue.add(2, 1300, now=0)
    assert queue.pop_pair(now=1) is None  # gap 300 > 150
    assert queue.pop_pair(now=3.9) is None  # 295 < 300
    assert queue.pop_pair(now=4.0) is not None  # 100 + 4 * 50 = 300
    capped = Queue(window=100, widen=50, max_window=200)
    capped.add(1, 1000, now=0)
    capped.add(2, 1300, now=0)
    assert capped.pop_pair(now=1000) is None  # never past the maximum


def test_both_windows_must_accept_the_gap():
    queue = Queue(window=100, widen=50, max_window=1000)
    queue.add(1, 1000, now=0)  # has waited long
    queue.add(2, 1290, now=9.9)  # just arrived: its window is ~105
    assert queue.pop_pair(now=10) is None


def test_one_entry_per_account_and_removal():
    queue = Queue()
    queue.add(1, 1000, now=0)
    queue.add(1, 1000, now=5)  # queueing again keeps the first place
    assert len(queue) == 1 and queue.entries[1].since == 0
    assert queue.pop_pair(now=100) is None  # never paired with itself
    assert queue.remove(1) and not queue.remove(1) and 1 not in queue
    for account in range(6):
        queue.add(account, 1000 + account, now=0)
    assert len(queue.pairs(now=0)) == 3 and len(queue) == 0


def test_a_newcomer_between_two_long_waiters_does_not_keep_them_apart():
    queue = Queue(window=100, widen=50, max_window=1000)
    queue.add(1, 1000, now=0)  # window 300 at now=4
    queue.add(2, 1150, now=4)  # just arrived: window 100, too narrow for either
    queue.add(3, 1290, now=0)  # window 300
    first, second = queue.pop_pair(now=4)
    assert (first.account_id, second.account_id) == (1, 3)
    assert list(queue.entries) == [2]


def test_pairs_are_the_closest_acceptable_ones_found_by_brute_force():
    rng = random.Random(7)
    for _ in range(200):
        queue = Queue(window=100, widen=50, max_window=400)
        for account in range(rng.randint(0, 9)):
            queue.add(account, rng.randint(800, 1600), now=rng.uniform(0, 10))
        now = 10.0
        while True:
            entries = list(queue.entries.values())
            acceptable = [abs(a.rating - b.rating) for a, b in itertools.combinations(entries, 2)
                          if abs(a.rating - b.rating) <= min(queue.allowed_gap(a, now),
                                                              queue.allowed_gap(b, now))]
            pair = queue.pop_pair(now)
            if pair is None:
                assert acceptable == []
                break
            assert abs(pair[0].rating - pair[1].rating) == min(acceptable)
            assert pair[0].since <= pair[1].since
