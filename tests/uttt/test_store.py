"""UtttStore on SQLite and PostgreSQL: matches, the move log, batches, results, Elo summary."""

import pytest
import pytest_twisted

from gamed.store.accounts import AccountStore
from gamed.store.ratings import MatchPlayer, MatchResult, RatingStore
from gamed.store.uttt import (EMPTY_BOARD, MatchClosed, MoveMade, NewMatch, StaleMatch,
                              UtttStore)
from gamed.uttt import rules


async def accounts(database, *names, guest=False):
    store = AccountStore(database)
    return [await store.create(name, None if guest else "x", 1000.0, guest=guest)
            for name in names]


def move_op(match_id, board, move, now=2000.0):
    after = rules.play(board, board.to_move, move)
    return MoveMade(match_id, board.moves, board.to_move, move.sub_x, move.sub_y, move.x,
                    move.y, after.encode_cells(), move.encode(), now), after


@pytest_twisted.ensureDeferred
async def test_a_new_match_is_open_with_names_and_guest_flags(database):
    a, b = await accounts(database, "alice", "Bob")
    (g,) = await accounts(database, "guest-1", guest=True)
    store = UtttStore(database)
    first, second = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0),
                                             NewMatch(a.id, g.id, False, 1600.0)])
    assert second > first
    rows = await store.open_matches()
    assert [r.id for r in rows] == [first, second]
    row = rows[0]
    assert (row.player_a, row.player_b, row.name_a, row.name_b) == (a.id, b.id, "alice", "bob")
    assert row.ranked and row.board == EMPTY_BOARD and row.last_move is None
    assert row.moves == 0 and row.created_at == row.last_move_at == 1500.0
    assert not row.guest_a and not row.guest_b
    assert rows[1].guest_b and not rows[1].ranked


@pytest_twisted.ensureDeferred
async def test_moves_update_the_position_and_the_log(database):
    a, b = await accounts(database, "alice", "bob")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0)])
    board = rules.new_board()
    ops = []
    for i, move in enumerate([rules.Move(1, 1, 0, 0), rules.Move(0, 0, 2, 2)]):
        op, board = move_op(match_id, board, move, 2000.0 + i)
        ops.append(op)
    assert await store.write_batch(ops) == [None, None]
    row = await store.get_match(match_id)
    assert row.moves == 2 and row.last_move == "0022" and row.last_move_at == 2001.0
    assert rules.decode_board(row.board, row.last_move) == board
    log = await store.moves(match_id)
    assert [entry[:6] for entry in log] == [(1, 1, 1, 1, 0, 0), (2, 2, 0, 0, 2, 2)]


@pytest_twisted.ensureDeferred
async def test_a_stale_move_fails_the_whole_batch_and_changes_nothing(database):
    a, b = await accounts(database, "alice", "bob")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0)])
    good, board = move_op(match_id, rules.new_board(), rules.Move(1, 1, 0, 0))
    stale, _ = move_op(match_id, rules.new_board(), rules.Move(2, 2, 0, 0))  # also move 0
    with pytest.raises(StaleMatch):
        await store.write_batch([good, stale])
    row = await store.get_match(match_id)
    assert row.moves == 0 and row.board == EMPTY_BOARD
    assert await store.moves(match_id) == []


@pytest_twisted.ensureDeferred
async def test_closing_records_the_result_and_rating_changes_atomically(database):
    a, b = await accounts(database, "alice", "bob")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0)])
    op, board = move_op(match_id, rules.new_board(), rules.Move(1, 1, 0, 0))
    result = MatchResult("uttt", [MatchPlayer(a.id, "win", 1.0), MatchPlayer(b.id, "loss", 0.0)],
                         rules.ABANDONED, ranked=True, k_factor=20.0)
    (recorded,) = await store.write_batch([MatchClosed(match_id, rules.MARK_A, False,
                                                       rules.ABANDONED, 3000.0, result, op,
                                                       (True, False))])
    assert recorded.changes[a.id].after == pytest.approx(1010.0)
    assert recorded.changes[b.id].after == pytest.approx(990.0)
    assert await store.open_matches() == []
    row = await store.get_match(match_id)
    assert not row.is_open and row.winner == rules.MARK_A and row.reason == rules.ABANDONED
    assert row.moves == 1  # the final move is in the same transaction
    ratings = RatingStore(database)
    assert (await ratings.get_rating(a.id, "uttt")).wins == 1
    history = await ratings.history(b.id, "uttt")
    assert history[0].outcome == "loss" and history[0].reason == rules.ABANDONED
    # closing twice is refused and records nothing more
    with pytest.raises(StaleMatch):
        await store.write_batch([MatchClosed(match_id, rules.MARK_B, False, rules.TIMEOUT,
                                             3001.0, result)])
    assert len(await ratings.history(a.id, "uttt")) == 1


@pytest_twisted.ensureDeferred
async def test_unseen_results_are_shown_once(database):
    a, b = await accounts(database, "alice", "bob")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, False, 1500.0)])
    await store.write_batch([MatchClosed(match_id, rules.MARK_B, False, rules.TIMEOUT, 3000.0,
                                         None, None, (False, True))])
    assert await store.take_unseen_results(b.id) == []  # b saw it live
    rows = await store.take_unseen_results(a.id)
    assert [r.id for r in rows] == [match_id] and rows[0].reason == rules.TIMEOUT
    assert await store.take_unseen_results(a.id) == []


@pytest_twisted.ensureDeferred
async def test_elo_summary_ranks_unrated_players_after_higher_ones(database):
    a, b, c = await accounts(database, "alice", "bob", "carol")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0)])
    result = MatchResult("uttt", [MatchPlayer(a.id, "win", 1.0), MatchPlayer(b.id, "loss", 0.0)],
                         rules.WON, ranked=True, k_factor=20.0)
    await store.write_batch([MatchClosed(match_id, rules.MARK_A, False, rules.WON, 2000.0,
                                         result)])
    top = await store.elo_summary(a.id)
    assert top.rating == pytest.approx(1010.0) and top.rank == 1
    assert [name for name, _ in top.top] == ["alice", "bob"]
    fresh = await store.elo_summary(c.id)
    assert fresh.rating == 1000.0 and fresh.rank == 2  # behind alice, ahead of bob
    loser = await store.elo_summary(b.id)
    assert loser.rank == 2  # 990: only alice is higher
    guest = await store.elo_summary(None)
    assert guest.rating is None and guest.rank is None and len(guest.top) == 2


@pytest_twisted.ensureDeferred
async def test_moves_of_many_matches_in_one_batch_and_a_stale_one_among_them(database):
    players = await accounts(database, *["p%02d" % i for i in range(8)])
    store = UtttStore(database)
    ids = await store.write_batch([NewMatch(players[i].id, players[i + 1].id, True, 1.0)
                                   for i in range(0, 8, 2)])
    ops, boards = [], {}
    for match_id in ids:
        op, boards[match_id] = move_op(match_id, rules.new_board(), rules.Move(1, 1, 1, 1))
        ops.append(op)
    assert await store.write_batch(ops) == [None] * 4
    for match_id in ids:
        row = await store.get_match(match_id)
        assert row.moves == 1 and rules.decode_board(row.board, row.last_move) == boards[match_id]
    # a batch where one match is not at the expected move fails as a whole
    second = []
    for match_id in ids:
        op, _ = move_op(match_id, boards[match_id], rules.Move(1, 1, 0, 0))
        second.append(op)
    second[2], _ = move_op(ids[2], rules.new_board(), rules.Move(0, 0, 0, 0))  # stale
    with pytest.raises(StaleMatch):
        await store.write_batch(second)
    for match_id in ids:
        assert (await store.get_match(match_id)).moves == 1
        assert len(await store.moves(match_id)) == 1


@pytest_twisted.ensureDeferred
async def test_a_close_from_a_copy_behind_the_database_is_refused(database):
    """Two nodes of a cluster: one ends the match on a timeout it saw at move 0 while the
    other has committed a move; the database refuses the close and records nothing."""
    a, b = await accounts(database, "alice", "bob")
    store = UtttStore(database)
    (match_id,) = await store.write_batch([NewMatch(a.id, b.id, True, 1500.0)])
    op, _ = move_op(match_id, rules.new_board(), rules.Move(1, 1, 1, 1))
    await store.write_batch([op])
    result = MatchResult("uttt", (MatchPlayer(a.id, "loss", 0.0), MatchPlayer(b.id, "win", 1.0)),
                         rules.TIMEOUT)
    with pytest.raises(StaleMatch):
        await store.write_batch([MatchClosed(match_id, rules.MARK_B, False, rules.TIMEOUT,
                                             3000.0, result, None, (False, False), 0)])
    row = await store.get_match(match_id)
    assert row.is_open and row.moves == 1
    assert await RatingStore(database).history(a.id, "uttt") == []
    await store.write_batch([MatchClosed(match_id, rules.MARK_B, False, rules.TIMEOUT,
                                         3000.0, result, None, (False, False), 1)])
    assert not (await store.get_match(match_id)).is_open
