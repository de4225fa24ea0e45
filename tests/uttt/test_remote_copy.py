"""A node's copy of a match another node changed: one move on from the copy is played
here, anything else decoded from the cells; either way the committed position."""

from __future__ import annotations

import random

from gamed.uttt import rules
from gamed.uttt.game import UtttGame


def news(board: rules.Board) -> dict:
    last = board.last_move
    return {"c": board.encode_cells(), "l": last.encode() if last else None,
            "n": board.moves}


def test_the_copy_follows_every_committed_position():
    rng = random.Random(7)
    for _game in range(30):
        positions = [rules.new_board()]
        while not positions[-1].over:
            board = positions[-1]
            positions.append(rules.play(board, board.to_move,
                                        rng.choice(list(rules.legal_moves(board)))))
        for before, after in zip(positions, positions[1:]):
            assert UtttGame._board_after(before, news(after)) == after
        # a copy further behind (news lost meanwhile) is decoded whole
        assert UtttGame._board_after(positions[0], news(positions[-1])) == positions[-1]


def test_news_that_does_not_follow_from_the_copy_is_decoded_whole():
    board = rules.play(rules.new_board(), rules.MARK_A, rules.Move(1, 1, 1, 1))
    other = rules.play(rules.new_board(), rules.MARK_A, rules.Move(0, 0, 1, 1))
    # the copy says one thing, the news another: the news's cells win
    assert UtttGame._board_after(other, news(rules.play(
        board, rules.MARK_B, rules.Move(1, 1, 0, 0)))).cells[rules.Move(0, 0, 1, 1).index] \
        == rules.EMPTY
