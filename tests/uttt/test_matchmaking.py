"""Rating-aware random matching (pure)."""

from gamed.uttt.matchmaking import Seeker, Window, best_opponent, pairs

WINDOW = Window(base=100, widen_per_second=25, widest=1000)


def test_the_closest_rating_within_the_window_wins_and_ties_go_to_the_oldest():
    me = Seeker("me", 1000, 10)
    waiting = [Seeker("far", 1300, 0), Seeker("near_new", 1040, 9), Seeker("near_old", 960, 5),
               Seeker("me", 1000, 0)]
    assert best_opponent(me, waiting, 10, WINDOW).key == "near_old"
    assert best_opponent(me, [Seeker("far", 1300, 10)], 10, WINDOW) is None


def test_windows_widen_with_waiting_up_to_the_widest():
    waiting = [Seeker("far", 1300, 0)]
    me = Seeker("me", 1000, 100)
    assert best_opponent(me, waiting, 7.9, WINDOW) is None  # 100 + 25*7.9 < 300
    assert best_opponent(me, waiting, 8.0, WINDOW).key == "far"
    capped = Window(100, 25, 200)
    assert best_opponent(me, waiting, 1000, capped) is None


def test_pairs_serves_the_oldest_first_and_uses_each_player_once():
    waiting = [Seeker("a", 1000, 0), Seeker("b", 1050, 1), Seeker("c", 1020, 2),
               Seeker("d", 2000, 3)]
    found = pairs(waiting, 3, WINDOW)
    assert [(x.key, y.key) for x, y in found] == [("a", "c")]
    later = pairs(waiting, 60, WINDOW)
    assert [(x.key, y.key) for x, y in later] == [("a", "c"), ("b", "d")]
