"""Block Attack's duel rules (pure): boards, the shared 7-bag, powers, the end."""

import json

import pytest
from hypothesis import given, strategies as st

from gamed.blockattack import rules
from gamed.blockattack.rules import Duel, PieceSequence, RuleError, check_board, empty_board


def duel(**kw):
    return Duel(("ann", "ben"), seed=42, started=1000.0, **kw)


def board(*cells):
    grid = empty_board()
    for row, col, value in cells:
        grid[row][col] = value
    return grid


@pytest.mark.parametrize("bad", [None, [], [[0] * 10] * 19, [[0] * 9] * 20,
                                 [[0] * 10] * 19 + [[8] + [0] * 9],
                                 [[0] * 10] * 19 + [[-1] + [0] * 9],
                                 [[0] * 10] * 19 + [[True] + [0] * 9],
                                 [[0] * 10] * 19 + [["1"] + [0] * 9], "board"])
def test_bad_boards_are_refused(bad):
    with pytest.raises(RuleError) as info:
        check_board(bad)
    assert info.value.code == "bad_board"


def test_seven_bag_each_bag_holds_every_piece_and_is_shared():
    one, two = PieceSequence(7), PieceSequence(7)
    pieces = [one[i] for i in range(70)]
    for start in range(0, 70, 7):
        assert sorted(pieces[start:start + 7]) == sorted(rules.PIECES)
    assert [two[i] for i in range(69, -1, -1)] == pieces[::-1]  # any access order
    assert [PieceSequence(8)[i] for i in range(14)] != pieces[:14]


def test_next_block_follows_each_players_own_count():
    game = duel()
    first = game.next_piece("ann").shape
    assert game.next_piece("ben").shape == first
    game.report("ann", 1002.0, empty_board(), 0, pieces_placed=3)
    assert game.next_piece("ann").shape == game.sequence[3]
    assert game.next_piece("ben").shape == first


def test_pieces_placed_never_goes_back_nor_faster_than_possible():
    game = duel()
    game.report("ann", 1001.0, empty_board(), 0, pieces_placed=5)
    with pytest.raises(RuleError):
        game.report("ann", 1001.5, empty_board(), 0, pieces_placed=4)
    with pytest.raises(RuleError):
        game.report("ann", 1001.5, empty_board(), 0, pieces_placed=1000)
    assert game.sides["ann"].pieces_placed == 5


def test_scores_earn_powers_in_order_and_never_go_down():
    game = duel(power_every=100)
    game.report("ann", 1001.0, empty_board(), 250)
    assert game.sides["ann"].powers_available == ["I", "R"]
    game.report("ann", 1002.0, empty_board(), 100)  # a stale lower score
    assert game.sides["ann"].score == 250
    game.report("ann", 1003.0, empty_board(), 450)
    assert game.sides["ann"].powers_available == ["I", "R", "S", "N"]


@pytest.mark.parametrize("power, check", [
    ("I", lambda piece, before: piece.inverted and piece.shape == before),
    ({"power": "S", "shape": "O"}, lambda piece, before: piece.shape == "O"),
    ({"power": "N", "direction": "right"}, lambda piece, before: piece.shift == 1),
    ({"power": "N"}, lambda piece, before: piece.shift == -1),
    ("R", lambda piece, before: piece.shape in rules.PIECES),
])
def test_each_power_changes_the_opponents_incoming_piece_once(power, check):
    game = duel(power_every=1)
    game.report("ann", 1001.0, empty_board(), 4)  # earns I R S N
    before = game.next_piece("ben").shape
    event = game.report("ann", 1002.0, empty_board(), 4, power_used=power)
    piece = game.next_piece("ben")
    assert check(piece, before)
    assert event.piece_index == 0 and game.sides["ben"].incoming == {event.id: event}
    letter = power if isinstance(power, str) else power["power"]
    assert letter not in game.sides["ann"].powers_available
    with pytest.raises(RuleError) as info:  # the same power again: not available any more
        game.report("ann", 1003.0, empty_board(), 4, power_used=power)
    assert info.value.code == "power_unavailable"
    game.report("ben", 1003.0, empty_board(), 0, acked_powers=[event.id])
    assert game.sides["ben"].incoming == {}
    assert game.next_piece("ann").shape == game.sequence[0]  # the user is not affected


def test_bad_power_requests():
    game = duel(power_every=1)
    game.report("ann", 1001.0, empty_board(), 4)
    for bad in ("X", {"power": "S"}, {"power": "S", "shape": "Q"},
                {"power": "N", "direction": "up"}, 5):
        with pytest.raises(RuleError):
            game.report("ann", 1002.0, empty_board(), 4, power_used=bad)
    assert game.sides["ann"].powers_available == ["I", "R", "S", "N"]  # nothing spent


def test_top_out_loses():
    game = duel()
    game.report("ben", 1010.0, board((0, 4, 3)), 900)
    assert game.finished and game.winner == "ann" and game.reason == "top_out"
    with pytest.raises(RuleError):
        game.report("ann", 1011.0, empty_board(), 0)


def test_time_up_higher_score_wins_or_draw():
    game = duel(length=180.0)
    game.report("ann", 1100.0, empty_board(), 300)
    game.report("ben", 1100.0, empty_board(), 200)
    game.sides["ann"].last_heard = game.sides["ben"].last_heard = 1179.0
    game.check_time(1179.9)
    assert not game.finished and game.time_left(1179.9) == pytest.approx(0.1)
    game.check_time(1180.0)
    assert game.finished and game.winner == "ann" and game.reason == "time"
    assert game.time_left(5000.0) == 0
    draw = duel(length=10.0, silence_timeout=100.0)
    draw.check_time(1010.0)
    assert draw.finished and draw.winner is None


def test_silence_no_show_and_forfeit():
    game = duel(silence_timeout=15.0)
    game.report("ann", 1010.0, empty_board(), 0)
    game.report("ben", 1001.0, empty_board(), 0)
    game.check_time(1015.9)
    assert not game.finished
    game.check_time(1016.0)  # ben has said nothing for 15 s
    assert game.finished and game.winner == "ann" and game.reason == "timeout"
    absent = duel(silence_timeout=15.0)
    absent.report("ann", 1010.0, empty_board(), 0)
    absent.check_time(1015.0)  # ben never showed up: nobody wins
    assert absent.finished and absent.winner is None and absent.reason == "no_show"
    early = duel(silence_timeout=15.0)  # ann reported once, then went silent too
    early.report("ann", 1000.05, empty_board(), 0)
    early.check_time(1015.1)
    assert early.reason == "no_show" and early.winner is None  # ben never showed: unrated
    nobody = duel(silence_timeout=15.0)
    nobody.check_time(1015.0)
    assert nobody.winner is None and nobody.reason == "no_show"
    other = duel()
    other.forfeit("ann", 1005.0)
    assert other.winner == "ben" and other.reason == "forfeit"


@given(st.lists(st.tuples(st.sampled_from(["ann", "ben"]), st.integers(0, 5000),
                          st.integers(0, 3), st.sampled_from([None, "I", "R", "S", "N"])),
                max_size=40))
def test_any_sequence_of_reports_keeps_the_invariants(reports):
    game = duel(power_every=200)
    now = 1000.0
    placed = {"ann": 0, "ben": 0}
    for name, score, more, power in reports:
        now += 0.5
        try:
            game.report(name, now, empty_board(), score, placed[name] + more, power)
            placed[name] += more
        except RuleError:
            pass
        for side in game.sides.values():
            assert side.powers_earned == side.score // 200
            assert len(side.powers_available) <= side.powers_earned
            assert side.pieces_placed == placed[side.name]


def test_board_json_is_json():
    import json

    grid = board((19, 0, 7), (0, 9, 1))
    assert json.loads(rules.board_json(grid)) == grid


@given(st.lists(st.lists(st.integers(0, rules.MAX_CELL), min_size=rules.COLS,
                         max_size=rules.COLS), min_size=rules.ROWS, max_size=rules.ROWS))
def test_board_json_is_the_compact_json_of_any_checked_board(board):
    encoded = rules.board_json(check_board(board))
    assert encoded == json.dumps(board, separators=(",", ":")).encode()
    assert rules.board_json(board) == encoded  # from the row cache the second time


def test_a_huge_score_is_refused_and_powers_held_are_capped():
    game = duel(power_every=500)
    with pytest.raises(RuleError) as refused:
        game.report("ann", 1001.0, empty_board(), rules.MAX_SCORE + 1)
    assert refused.value.code == "bad_score" and game.sides["ann"].score == 0
    game.report("ann", 1001.0, empty_board(), rules.MAX_SCORE)  # at once, no loop per power
    side = game.sides["ann"]
    assert len(side.powers_available) == rules.MAX_POWERS_HELD
    assert side.powers_available[:5] == list("IRSNI")
    assert side.powers_earned == rules.MAX_SCORE // 500
    game.report("ann", 1002.0, empty_board(), rules.MAX_SCORE, power_used="I")
    assert len(side.powers_available) == rules.MAX_POWERS_HELD - 1  # none earned meanwhile
