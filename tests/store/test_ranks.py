"""RankIndex: the pages' ranks from memory agree with the ranks counted in SQL, as matches
are recorded (incremental refreshes), with ties, unranked matches and deleted accounts."""

import random

import pytest_twisted

from gamed.store.accounts import AccountStore
from gamed.store.ranks import RankIndex
from gamed.store.ratings import MatchPlayer, MatchResult, RatingStore, rank_txn

GAMES = ("chess", "go")


async def exact_ranks(database, accounts):
    """{(game, account_id): rank} counted in SQL (None: not rated in that game)."""
    def count(cur):
        return {(game, a.id): rank_txn(cur, a.id, game) for game in GAMES for a in accounts}

    return await database.run_interaction("exact", count)


async def index_ranks(database, index, accounts):
    def read(cur):
        index.refresh(cur)
        ranks = {}
        for game in GAMES:
            for a in accounts:
                row = cur.execute("SELECT rating FROM ratings WHERE account_id = ? AND game = ?",
                                  (a.id, game)).fetchone()
                ranks[(game, a.id)] = None if row is None else index.rank(game, row[0], a.id)
        return ranks, {game: index.count(game) for game in GAMES}

    return await database.run_interaction("index", read)


@pytest_twisted.ensureDeferred
async def test_index_ranks_match_sql_counts_as_matches_are_recorded(database):
    rng = random.Random(5)
    accounts = [await AccountStore(database).create("p%d" % i, "h", 0.0) for i in range(9)]
    ratings = RatingStore(database)
    index = RankIndex(full_every=3600.0)  # one full read, then only incremental refreshes
    for step in range(40):
        game = rng.choice(GAMES)
        a, b = rng.sample(accounts, 2)
        outcome = rng.choice(("win", "loss", "draw"))
        other = {"win": "loss", "loss": "win", "draw": "draw"}[outcome]
        await ratings.record_match(MatchResult(
            game, [MatchPlayer(a.id, outcome), MatchPlayer(b.id, other)], "done",
            ranked=rng.random() < 0.8, k_factor=rng.choice((0.0, 20.0))))  # K 0: ties stay
        if step % 3 == 0:
            got, counts = await index_ranks(database, index, accounts)
            assert got == await exact_ranks(database, accounts), step
            for game in GAMES:
                assert counts[game] == sum(1 for (g, _), r in got.items()
                                           if g == game and r is not None)
                for offset in (0, 2, 5):  # the pages' leaderboard, read through the index
                    assert (await RatingStore(database, ranks=index).leaderboard(
                        game, 3, offset)) == await ratings.leaderboard(game, 3, offset)
    assert index._next_full > 0  # the full read happened once; the rest were increments


@pytest_twisted.ensureDeferred
async def test_a_deleted_account_leaves_the_index_at_its_next_full_read(database):
    store = AccountStore(database)
    a, b, c = [await store.create(name, "h", 0.0) for name in ("a", "b", "c")]
    ratings = RatingStore(database)
    for winner, loser in ((a, b), (b, c)):
        await ratings.record_match(MatchResult(
            "chess", [MatchPlayer(winner.id, "win"), MatchPlayer(loser.id, "loss")], "done",
            k_factor=20.0))
    now = [0.0]
    index = RankIndex(full_every=10.0, clock=lambda: now[0])
    before, counts = await index_ranks(database, index, [a, b, c])
    assert counts["chess"] == 3
    await database.run_interaction(
        "delete", lambda cur: cur.execute("DELETE FROM accounts WHERE id = ?", (a.id,)))
    _, counts = await index_ranks(database, index, [b, c])
    assert counts["chess"] == 3  # not yet: no match since, no full read due
    now[0] = 11.0
    got, counts = await index_ranks(database, index, [b, c])
    assert counts["chess"] == 2 and got == await exact_ranks(database, [b, c])
    assert got[("chess", b.id)] == before[("chess", b.id)] - 1


def test_a_match_committed_after_a_higher_one_is_ranked_within_a_second(database_url):
    """PostgreSQL takes a match's id before commit: match N may become visible after
    N + 1. The index's marker has then passed it; the once-a-second look back finds it."""
    import pytest

    from gamed.store.database import Cursor, blocking_connect, run_blocking
    from gamed.store.engines import create_engine
    from gamed.store.migrations import migrate
    from gamed.store.ratings import record_match_txn

    engine = create_engine(database_url)
    if engine.name == "sqlite":
        pytest.skip("SQLite has one writer: ids commit in order")
    run_blocking(engine, migrate)

    def create(cur):
        return [cur.insert("INSERT INTO accounts (name, name_key, is_guest, banned, created_at)"
                           " VALUES (?, ?, 0, 0, '2026-01-01')", (n, n)) for n in "abcd"]

    a, b, c, d = run_blocking(engine, create)

    def result(winner, loser):
        return MatchResult("chess", [MatchPlayer(winner, "win"), MatchPlayer(loser, "loss")],
                           "done", k_factor=20.0)

    now = [100.0]
    index = RankIndex(full_every=3600.0, clock=lambda: now[0])
    reader = blocking_connect(engine)

    def ranks():
        def read(cur):
            index.refresh(cur)
            return {x: index.rank("chess", *cur.execute(
                "SELECT rating, account_id FROM ratings WHERE account_id = ? AND game = ?",
                (x, "chess")).fetchone()) for x in (a, b, c, d)
                if cur.scalar("SELECT 1 FROM ratings WHERE account_id = ? AND game = ?",
                              (x, "chess"))}

        return run_blocking(engine, read, connection=reader)

    run_blocking(engine, lambda cur: record_match_txn(cur, result(a, b), "t"))
    assert ranks() == {a: 1, b: 2}
    slow = blocking_connect(engine)  # match N: its id taken, not committed yet
    slow_cur = Cursor(slow.cursor(), engine)
    record_match_txn(slow_cur, result(d, a), "t")
    run_blocking(engine, lambda cur: record_match_txn(cur, result(c, b), "t"))  # N + 1
    now[0] += 0.1
    assert set(ranks()) == {a, b, c}  # N + 1 is in; N is not visible yet
    slow.commit()
    now[0] += 0.1
    exact = run_blocking(engine, lambda cur: {x: rank_txn(cur, x, "chess")
                                              for x in (a, b, c, d)})
    assert ranks() != exact  # committed below the marker: not in the index yet
    now[0] += 1.0
    assert ranks() == exact  # the look back found it
    slow.close()
    reader.close()
