"""The account, session, rating and friend stores, on SQLite and PostgreSQL."""

import pytest
import pytest_twisted

from gamed.store.accounts import AccountStore, NameTaken, SessionStore
from gamed.store.friends import FriendStore
from gamed.store.ratings import MatchPlayer, MatchResult, RatingStore


@pytest_twisted.ensureDeferred
async def test_accounts_are_unique_case_insensitively(database):
    store = AccountStore(database)
    alice = await store.create("Alice", "hash", 1.0)
    assert alice.name == "Alice" and alice.name_key == "alice"
    with pytest.raises(NameTaken):
        await store.create("ALICE", "hash", 2.0)
    assert (await store.find("aLiCe")).id == alice.id
    found, hashed = await store.find_with_hash("alice")
    assert found == alice and hashed == "hash"
    assert await store.find("bob") is None
    assert (await store.get_many([alice.id, 999])) == {alice.id: alice}
    # a NUL is in no name; PostgreSQL would refuse it in a query: not found, on both
    assert await store.find("ali\x00ce") is None
    assert await store.find_with_hash("\x00") is None


@pytest_twisted.ensureDeferred
async def test_sessions_expire_and_revoke(database):
    accounts, sessions = AccountStore(database), SessionStore(database)
    alice = await accounts.create("alice", "h", 0.0)
    await sessions.add("t1", alice.id, 10.0, 100.0)
    await sessions.add("t2", alice.id, 10.0, 100.0)
    assert (await sessions.account_for("t1", 50.0)).id == alice.id
    assert await sessions.account_for("t1", 100.0) is None  # expired
    assert await sessions.account_for("nope", 50.0) is None
    await sessions.revoke("t1")
    assert await sessions.account_for("t1", 50.0) is None
    assert (await sessions.account_for("t2", 50.0)).id == alice.id
    assert await sessions.revoke_all(alice.id) == 1
    assert await sessions.account_for("t2", 50.0) is None
    await accounts.set_banned(alice.id, True)
    await sessions.add("t3", alice.id, 10.0, 100.0)
    assert await sessions.account_for("t3", 50.0) is None  # banned


@pytest_twisted.ensureDeferred
async def test_record_match_writes_everything_and_rates(database):
    accounts, ratings = AccountStore(database), RatingStore(database, lambda: 1000.0)
    a = await accounts.create("a", None, 0.0)
    b = await accounts.create("b", None, 0.0)
    result = MatchResult("chess", [MatchPlayer(a.id, "win", 3), MatchPlayer(b.id, "loss", 1)],
                         reason="goal", k_factor=40, details={"minutes": 5})
    recorded = await ratings.record_match(result)
    assert recorded.changes[a.id].before == 1000 and recorded.changes[a.id].after == 1020
    assert recorded.changes[b.id].after == 980
    ra = await ratings.get_rating(a.id, "chess")
    assert (ra.rating, ra.wins, ra.losses, ra.draws) == (1020, 1, 0, 0)
    assert ra.winrate == 100.0
    board = await ratings.leaderboard("chess")
    assert [(r.rank, r.name) for r in board] == [(1, "a"), (2, "b")]
    assert await ratings.rank(b.id, "chess") == 2
    assert await ratings.rank(b.id, "other") is None
    history = await ratings.history(b.id, "chess")
    assert len(history) == 1
    summary = history[0]
    assert summary.outcome == "loss" and summary.opponents == ("a",)
    assert summary.opponent_scores == (3.0,) and summary.rating_after == 980
    assert summary.details == {"minutes": 5}
    listed = await ratings.matches(game="chess", player_id=a.id)
    assert listed[0]["players"][0]["name"] == "a" and listed[0]["reason"] == "goal"
    # a draw between unequal ratings moves them towards each other
    recorded = await ratings.record_match(MatchResult(
        "chess", [MatchPlayer(a.id, "draw"), MatchPlayer(b.id, "draw")], "time", k_factor=40))
    assert recorded.changes[a.id].after < 1020 and recorded.changes[b.id].after > 980
    # unranked: stored, no rating change
    recorded = await ratings.record_match(MatchResult(
        "chess", [MatchPlayer(a.id, "loss"), MatchPlayer(b.id, "win")], "forfeit",
        ranked=False))
    assert recorded.changes[a.id].delta == 0
    assert len(await ratings.history(a.id)) == 3


@pytest_twisted.ensureDeferred
async def test_record_match_is_all_or_nothing(database):
    accounts, ratings = AccountStore(database), RatingStore(database, lambda: 0.0)
    a = await accounts.create("a", None, 0.0)
    bad = MatchResult("chess", [MatchPlayer(a.id, "win"), MatchPlayer(424242, "loss")], "x")
    with pytest.raises(Exception):
        await ratings.record_match(bad)  # foreign key: the second player does not exist
    assert await ratings.history(a.id) == []
    assert (await ratings.get_rating(a.id, "chess")).rating == 1000


@pytest_twisted.ensureDeferred
async def test_friends_both_ways(database):
    accounts, friends = AccountStore(database), FriendStore(database, lambda: 0.0)
    a = await accounts.create("a", None, 0.0)
    b = await accounts.create("b", None, 0.0)
    c = await accounts.create("c", None, 0.0)
    assert await friends.add(a.id, b.id) is True
    assert await friends.add(b.id, a.id) is False
    await friends.add(a.id, c.id)
    assert [f.name for f in await friends.friends_of(a.id)] == ["b", "c"]
    assert [f.name for f in await friends.friends_of(b.id)] == ["a"]
    assert await friends.remove(b.id, a.id) is True
    assert [f.name for f in await friends.friends_of(a.id)] == ["c"]
    assert await friends.remove(b.id, a.id) is False


@pytest_twisted.ensureDeferred
async def test_results_for_one_player_at_once_are_all_counted(database):
    from twisted.internet import defer

    accounts, ratings = AccountStore(database), RatingStore(database, lambda: 0.0)
    ann = await accounts.create("ann", "h", 0.0)
    others = [await accounts.create("p%d" % n, "h", 0.0) for n in range(2)]
    for _ in range(10):  # two results for ann in flight at once, each time
        await defer.gatherResults([
            ratings.record_match(MatchResult("novaglide", [MatchPlayer(ann.id, "win", 1),
                                                           MatchPlayer(other.id, "loss", 0)],
                                             "time", k_factor=40))
            for other in others], consumeErrors=True)
    rating = await ratings.get_rating(ann.id, "novaglide")
    assert rating.wins == 20 and rating.played == 20
    rows = await ratings.matches(game="novaglide", limit=100)
    assert len(rows) == 20


@pytest_twisted.ensureDeferred
async def test_a_result_recorded_again_under_its_key_is_stored_once(database):
    accounts, ratings = AccountStore(database), RatingStore(database, lambda: 0.0)
    ann, ben = [await accounts.create(n, "h", 0.0) for n in ("ann", "ben")]
    result = MatchResult("blockattack", [MatchPlayer(ann.id, "win", 9),
                                         MatchPlayer(ben.id, "loss", 3)], "time",
                         k_factor=32, key="blockattack-abc")
    first = await ratings.record_match(result)
    again = await ratings.record_match(result)  # a retry after a lost acknowledgement
    assert again == first
    assert len(await ratings.matches(game="blockattack")) == 1
    assert (await ratings.get_rating(ann.id, "blockattack")).wins == 1
    other = await ratings.record_match(MatchResult(
        "blockattack", [MatchPlayer(ann.id, "win", 1), MatchPlayer(ben.id, "loss", 0)],
        "time", k_factor=32))  # no key: every write is a match
    assert other.match_id != first.match_id
