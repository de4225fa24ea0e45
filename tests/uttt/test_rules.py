"""The pure ultimate tic-tac-toe rules: targeting, decided sub-boards, results, coordinates."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamed.uttt import rules
from gamed.uttt.rules import (DRAWN, EMPTY, MARK_A, MARK_B, Board, IllegalMove, Move,
                              board_from_cells, check_move, coordinate, decode_board,
                              legal_moves, new_board, play, replay)


def cells_with(marks):
    """A cell tuple from {(sub_x, sub_y, x, y): mark}."""
    cells = [EMPTY] * 81
    for (sx, sy, x, y), mark in marks.items():
        cells[Move(sx, sy, x, y).index] = mark
    return tuple(cells)


# -- coordinates -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(0, 0), (1, 1), (2, 2), ("0", 0), ("1", 1),
                                             ("2", 2), (" 2", 2)])
def test_coordinates_accept_ints_and_digit_strings(value, expected):
    assert coordinate(value) == expected


@pytest.mark.parametrize("value", [-1, 3, "3", "-1", "", "a", "01", "1.0", 1.0, None, True,
                                   False, [], {}, "１"])
def test_bad_coordinates_raise_value_error(value):
    with pytest.raises(ValueError):
        coordinate(value)


def test_move_parse_and_encode_round_trip():
    move = Move.parse("2", 1, "0", 2)
    assert move == Move(2, 1, 0, 2)
    assert Move.decode(move.encode()) == move
    assert move.as_dict() == {"sub_x": 2, "sub_y": 1, "x": 0, "y": 2}


def test_move_index_follows_the_client_layout():
    # complete_field[sub_y*3+y][sub_x*3+x]
    move = Move(sub_x=2, sub_y=1, x=0, y=2)
    board = play(new_board(), MARK_A, Move(1, 1, 2, 1))  # sends B to sub (2, 1)
    board = play(board, MARK_B, move)
    assert board.complete_field()[1 * 3 + 2][2 * 3 + 0] == MARK_B
    assert board.cells[move.index] == MARK_B


# -- turn order and targeting ------------------------------------------------------------------

def test_a_new_board_is_empty_and_a_moves_first_anywhere():
    board = new_board()
    assert board.to_move == MARK_A and not board.over and board.moves == 0
    assert board.allowed_sub_boards() == list(range(9))
    assert len(list(legal_moves(board))) == 81
    assert board.complete_field() == [[0] * 9 for _ in range(9)]
    assert board.global_field() == [[0] * 3 for _ in range(3)]


def test_players_alternate_and_out_of_turn_moves_are_refused():
    board = play(new_board(), MARK_A, Move(0, 0, 1, 1))
    assert board.to_move == MARK_B
    with pytest.raises(IllegalMove) as exc:
        play(board, MARK_A, Move(1, 1, 0, 0))
    assert exc.value.code == "not_your_turn"
    board = play(board, MARK_B, Move(1, 1, 0, 0))
    assert board.to_move == MARK_A and board.moves == 2


def test_the_last_cell_names_the_next_sub_board():
    board = play(new_board(), MARK_A, Move(0, 0, 2, 1))
    assert board.allowed_sub_boards() == [1 * 3 + 2]
    with pytest.raises(IllegalMove) as exc:
        play(board, MARK_B, Move(0, 0, 0, 0))
    assert exc.value.code == "wrong_sub_board"
    assert "(2, 1)" in exc.value.message
    assert all(m.sub_x == 2 and m.sub_y == 1 for m in legal_moves(board))
    assert len(list(legal_moves(board))) == 9


def test_an_occupied_cell_is_refused():
    board = play(new_board(), MARK_A, Move(1, 1, 1, 1))  # B must play in the centre
    with pytest.raises(IllegalMove) as exc:
        play(board, MARK_B, Move(1, 1, 1, 1))
    assert exc.value.code == "occupied"


def test_refused_moves_change_nothing():
    board = play(new_board(), MARK_A, Move(0, 0, 1, 1))
    before = board
    for mark, move in ((MARK_A, Move(1, 1, 0, 0)), (MARK_B, Move(0, 0, 0, 0)),
                       (MARK_B, Move(1, 1, 5, 0))):
        with pytest.raises(IllegalMove):
            play(board, mark, move)
    assert board == before


def test_out_of_range_coordinates_are_refused_by_the_rules_too():
    with pytest.raises(IllegalMove) as exc:
        check_move(new_board(), MARK_A, Move(3, 0, 0, 0))
    assert exc.value.code == "out_of_range"


# -- decided sub-boards --------------------------------------------------------------------------

def test_a_won_sub_board_becomes_the_winners_mark_globally():
    board = play(new_board(), MARK_A, Move(0, 0, 0, 0))
    board = play(board, MARK_B, Move(0, 0, 1, 1))  # B: centre of (0,0) -> A to (1,1)
    board = play(board, MARK_A, Move(1, 1, 0, 0))  # -> B to (0,0)
    board = play(board, MARK_B, Move(0, 0, 2, 0))  # -> A to (2,0)
    board = play(board, MARK_A, Move(2, 0, 0, 0))  # -> B to (0,0)
    board = play(board, MARK_B, Move(0, 0, 0, 2))  # B: (2,0),(1,1),(0,2) anti-diagonal
    assert board.global_cells[0] == MARK_B
    assert board.global_field()[0][0] == MARK_B
    assert not board.over


def test_a_move_into_a_decided_sub_board_is_refused():
    board = play(new_board(), MARK_A, Move(0, 0, 0, 0))
    for mark, move in ((MARK_B, Move(0, 0, 1, 1)), (MARK_A, Move(1, 1, 0, 0)),
                       (MARK_B, Move(0, 0, 2, 0)), (MARK_A, Move(2, 0, 0, 0)),
                       (MARK_B, Move(0, 0, 0, 2))):
        board = play(board, mark, move) if board.moves else board
    # B won (0,0); the last move (0,2) sends A to sub-board (0,2), which is open
    assert board.allowed_sub_boards() == [2 * 3 + 0]
    board = play(board, MARK_A, Move(0, 2, 0, 0))  # sends B to (0,0): decided
    assert 0 not in board.allowed_sub_boards()
    assert len(board.allowed_sub_boards()) == 8  # anywhere undecided
    with pytest.raises(IllegalMove) as exc:
        play(board, MARK_B, Move(0, 0, 1, 0))
    assert exc.value.code == "sub_board_decided"
    board = play(board, MARK_B, Move(2, 2, 1, 1))  # free choice


def test_a_full_sub_board_without_a_line_is_drawn():
    # sub-board (0,0) holds  A B A / A B B / B A .  : the last cell makes no line
    layout = {(0, 0, 0, 0): MARK_A, (0, 0, 1, 0): MARK_B, (0, 0, 2, 0): MARK_A,
              (0, 0, 0, 1): MARK_A, (0, 0, 1, 1): MARK_B, (0, 0, 2, 1): MARK_B,
              (0, 0, 0, 2): MARK_B, (0, 0, 1, 2): MARK_A}
    board = Board(cells_with(layout), (EMPTY,) * 9, Move(1, 1, 0, 0), 8)  # A to (0,0)
    board = play(board, MARK_A, Move(0, 0, 2, 2))  # the ninth cell
    assert board.global_cells[0] == DRAWN
    assert board.global_field()[0][0] == 3
    assert not board.over
    # B was sent to (2,2), which is open; a later move aimed at (0,0) frees the choice
    assert board.allowed_sub_boards() == [8]


def test_a_sub_board_won_on_its_last_cell_counts_as_won_not_drawn():
    layout = {(0, 0, 0, 0): MARK_A, (0, 0, 1, 0): MARK_B, (0, 0, 2, 0): MARK_B,
              (0, 0, 0, 1): MARK_B, (0, 0, 1, 1): MARK_A, (0, 0, 2, 1): MARK_A,
              (0, 0, 0, 2): MARK_B, (0, 0, 1, 2): MARK_A}
    cells = cells_with(layout)  # 4 A, 4 B: A to move
    board = Board(cells, (EMPTY,) * 9, Move(1, 1, 0, 0), 8)
    board = play(board, MARK_A, Move(0, 0, 2, 2))  # diagonal (0,0)-(1,1)-(2,2)
    assert board.global_cells[0] == MARK_A


# -- global results ------------------------------------------------------------------------------

def test_three_sub_boards_in_a_row_win_the_game():
    # A owns sub-boards (0,0) and (1,0) and needs one cell to take (2,0)
    layout = {(sub_x, 0, x, 0): MARK_A for sub_x in (0, 1) for x in range(3)}
    layout.update({(2, 0, 0, 0): MARK_A, (2, 0, 1, 0): MARK_A})
    for key in [(0, 2, 0, 0), (0, 2, 1, 0), (0, 2, 0, 1), (1, 2, 0, 0), (1, 2, 1, 0),
                (1, 2, 0, 1), (2, 2, 0, 0), (2, 2, 2, 0)]:
        layout[key] = MARK_B
    board = board_from_cells(cells_with(layout), Move(2, 2, 2, 0))  # sends A to (2,0)
    assert board.global_field()[0] == [MARK_A, MARK_A, EMPTY]
    assert board.to_move == MARK_A and not board.over
    board = play(board, MARK_A, Move(2, 0, 2, 0))
    assert board.winner == MARK_A and board.over and not board.draw
    assert board.allowed_sub_boards() == []
    assert list(legal_moves(board)) == []
    with pytest.raises(IllegalMove) as exc:
        play(board, MARK_B, Move(1, 1, 1, 1))
    assert exc.value.code == "game_over"


def test_every_sub_board_decided_without_a_line_is_a_draw():
    # global pattern  A B A / A B B / B A D  with D drawn: no line for anyone
    pattern = [MARK_A, MARK_B, MARK_A, MARK_A, MARK_B, MARK_B, MARK_B, MARK_A, DRAWN]
    cells = [EMPTY] * 81
    for sub, owner in enumerate(pattern[:8]):
        for i in rules.sub_board_cells(sub)[:3]:  # the top row of each sub-board
            cells[i] = owner
    drawn = [MARK_A, MARK_B, MARK_A, MARK_A, MARK_B, MARK_B, MARK_B, MARK_A, MARK_A]
    for i, mark in zip(rules.sub_board_cells(8), drawn):
        cells[i] = mark
    count_a, count_b = cells.count(MARK_A), cells.count(MARK_B)
    assert count_a - count_b in (0, 1)
    last = Move(2, 2, 2, 2)
    board = board_from_cells(cells, last)
    assert board.draw and board.over and board.winner == EMPTY
    assert board.global_field() == [[1, 2, 1], [1, 2, 2], [2, 1, 3]]


def test_a_won_last_sub_board_that_fills_the_global_field_without_a_line_draws():
    # regression: the draw check must follow won sub-boards too, not only drawn ones
    pattern = [MARK_A, MARK_B, MARK_A, MARK_A, MARK_B, MARK_B, MARK_B, MARK_A]
    cells = [EMPTY] * 81
    for sub, owner in enumerate(pattern):
        for i in rules.sub_board_cells(sub)[:3]:
            cells[i] = owner
    # sub-board 8: A needs (2,2,2,0) to complete its top row; B gets a spare mark
    cells[Move(2, 2, 0, 0).index] = MARK_A
    cells[Move(2, 2, 1, 0).index] = MARK_A
    cells[Move(2, 2, 0, 2).index] = MARK_B
    cells[Move(2, 2, 1, 2).index] = MARK_B
    assert cells.count(MARK_A) == cells.count(MARK_B)
    board = Board(tuple(cells), tuple(pattern) + (EMPTY,), Move(1, 1, 2, 2), 28)
    board = play(board, MARK_A, Move(2, 2, 2, 0))
    # global: A B A / A B B / B A A -> no line, all decided
    assert board.global_cells[8] == MARK_A
    assert board.draw and board.winner == EMPTY


# -- rebuilding, abandoning, timeouts -------------------------------------------------------------

def test_board_from_cells_rebuilds_the_same_position():
    board, _ = random_game(7)
    again = decode_board(board.encode_cells(), board.last_move.encode())
    assert again == board


@pytest.mark.parametrize("cells, last", [
    ("0" * 80, None),
    ("4" + "0" * 80, None),
    ("2" + "0" * 80, Move(0, 0, 0, 0)),  # B moved first
    ("11" + "0" * 79, Move(0, 0, 1, 0)),  # A twice
    ("1" + "0" * 80, None),  # a mark but no last move
    ("1" + "0" * 80, Move(1, 1, 1, 1)),  # last move on an empty cell
])
def test_board_from_cells_refuses_impossible_positions(cells, last):
    with pytest.raises(ValueError):
        board_from_cells(cells, last)


def test_the_remaining_player_wins_an_abandoned_game_rated_only_after_both_moved():
    board = new_board()
    assert rules.abandon_result(board, MARK_A) == (MARK_B, rules.CANCELLED)
    board = play(board, MARK_A, Move(1, 1, 1, 1))
    assert rules.abandon_result(board, MARK_B) == (MARK_A, rules.CANCELLED)
    board = play(board, MARK_B, Move(1, 1, 0, 0))
    assert rules.abandon_result(board, MARK_B) == (MARK_A, rules.ABANDONED)
    assert rules.abandon_result(board, MARK_A) == (MARK_B, rules.ABANDONED)


def test_on_timeout_the_player_to_move_loses():
    board = new_board()
    assert rules.timeout_result(board) == (MARK_B, rules.TIMEOUT)
    board = play(board, MARK_A, Move(1, 1, 1, 1))
    assert rules.timeout_result(board) == (MARK_A, rules.TIMEOUT)


# -- random games: invariants hold on every legal path ---------------------------------------------

def random_game(seed):
    rng = random.Random(seed)
    board, moves = new_board(), []
    while not board.over:
        options = list(legal_moves(board))
        assert options, "a game that is not over always has a legal move"
        move = rng.choice(options)
        board = play(board, board.to_move, move)
        moves.append(move)
    return board, moves


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 32))
def test_random_games_end_and_keep_every_invariant(seed):
    board, moves = random_game(seed)
    assert board.over and board.moves == len(moves) <= 81
    assert bool(board.winner) != board.draw
    assert replay(moves) == board
    assert decode_board(board.encode_cells(), moves[-1].encode()) == board
    # the global field is exactly the derived state of each sub-board
    assert board.global_cells == tuple(rules.sub_board_state(board.cells, s) for s in range(9))
    if board.winner:
        assert rules.line_winner(board.global_cells) == board.winner
        # the winner made the last move
        assert board.winner == (MARK_A if len(moves) % 2 else MARK_B)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 32), st.data())
def test_exactly_the_legal_moves_are_accepted(seed, data):
    board, moves = random_game(seed)
    cut = data.draw(st.integers(min_value=0, max_value=len(moves) - 1))
    position = replay(moves[:cut])
    legal = set(legal_moves(position))
    for sub_x in range(3):
        for sub_y in range(3):
            for x in range(3):
                for y in range(3):
                    move = Move(sub_x, sub_y, x, y)
                    try:
                        check_move(position, position.to_move, move)
                        accepted = True
                    except IllegalMove:
                        accepted = False
                    assert accepted == (move in legal)
