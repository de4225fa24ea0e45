"""Ultimate tic-tac-toe rules: pure values and functions (no Twisted, no I/O, no clock).

The board is the client's `complete_field[sub_y*3+y][sub_x*3+x]` kept as one flat tuple of
81 marks (index `row*9 + col`). A move names a sub-board (sub_x, sub_y) and a cell (x, y)
inside it. The next player must play in the sub-board named by the last move's (x, y),
unless that sub-board is decided (won, or full = drawn); then anywhere undecided. A won
sub-board becomes its winner's mark in the 3x3 global field, a full one becomes DRAWN;
three in a row on the global field wins the game and a global field with every sub-board
decided (and no line) is a draw. Player A (mark 1) moves first.
"""

from __future__ import annotations

from typing import Iterator, Optional

import attrs

EMPTY, MARK_A, MARK_B, DRAWN = 0, 1, 2, 3
SIZE = 3
CELLS = 81

#: the eight lines of a 3x3 grid, as flat indices (y*3 + x)
LINES = (
    (0, 1, 2), (3, 4, 5), (6, 7, 8),  # rows
    (0, 3, 6), (1, 4, 7), (2, 5, 8),  # columns
    (0, 4, 8), (2, 4, 6),  # diagonals
)

# reasons a finished game records
WON = "three_in_a_row"
DRAW = "draw"
ABANDONED = "abandoned"
TIMEOUT = "timeout"
CANCELLED = "cancelled"


class IllegalMove(Exception):
    """A move the rules refuse: a stable `code` and a message fit for the player."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def coordinate(value) -> int:
    """0, 1 or 2 from an int or a digit string ("0".."2", as the web client sends them).

    Anything else (bools, floats, other strings, None) raises ValueError.
    """
    if isinstance(value, bool):
        raise ValueError("a coordinate must be 0, 1 or 2, not %r" % (value,))
    if isinstance(value, str):
        text = value.strip()
        if len(text) != 1 or text not in "012":
            raise ValueError("a coordinate must be \"0\", \"1\" or \"2\", not %r" % (value,))
        return int(text)
    if isinstance(value, int) and 0 <= value < SIZE:
        return value
    raise ValueError("a coordinate must be 0, 1 or 2, not %r" % (value,))


@attrs.frozen
class Move:
    sub_x: int
    sub_y: int
    x: int
    y: int

    @classmethod
    def parse(cls, sub_x, sub_y, x, y) -> "Move":
        """A Move from wire values (ints or digit strings); ValueError when out of range."""
        return cls(coordinate(sub_x), coordinate(sub_y), coordinate(x), coordinate(y))

    @property
    def index(self) -> int:
        """Flat index into the 81 cells."""
        return (self.sub_y * SIZE + self.y) * 9 + self.sub_x * SIZE + self.x

    @property
    def sub_index(self) -> int:
        """Flat index of the sub-board played in (into the 9 global cells)."""
        return self.sub_y * SIZE + self.sub_x

    @property
    def target(self) -> int:
        """Flat index of the sub-board this move sends the opponent to."""
        return self.y * SIZE + self.x

    def as_dict(self) -> dict:
        return {"sub_x": self.sub_x, "sub_y": self.sub_y, "x": self.x, "y": self.y}

    def encode(self) -> str:
        return "%d%d%d%d" % (self.sub_x, self.sub_y, self.x, self.y)

    @classmethod
    def decode(cls, text: str) -> "Move":
        return cls.parse(*text)


def sub_board_cells(sub: int) -> tuple:
    """The 9 flat cell indices of sub-board `sub` (sub_y*3 + sub_x), in (y, x) order."""
    sub_x, sub_y = sub % SIZE, sub // SIZE
    return tuple((sub_y * SIZE + y) * 9 + sub_x * SIZE + x for y in range(SIZE)
                 for x in range(SIZE))


_SUB_CELLS = tuple(sub_board_cells(sub) for sub in range(9))


def line_winner(grid) -> int:
    """MARK_A or MARK_B if that mark holds a line of the 9-item `grid`, else EMPTY."""
    for a, b, c in LINES:
        mark = grid[a]
        if mark in (MARK_A, MARK_B) and grid[b] == mark and grid[c] == mark:
            return mark
    return EMPTY


def sub_board_state(cells, sub: int) -> int:
    """EMPTY (open), MARK_A / MARK_B (won) or DRAWN (full without a line)."""
    grid = [cells[i] for i in _SUB_CELLS[sub]]
    winner = line_winner(grid)
    if winner:
        return winner
    return DRAWN if all(grid) else EMPTY


@attrs.frozen
class Board:
    """One game position. Build with `new_board()` / `board_from_cells()`, change with `play()`."""

    cells: tuple = (EMPTY,) * CELLS
    global_cells: tuple = (EMPTY,) * 9
    last_move: Optional[Move] = None
    moves: int = 0
    #: MARK_A / MARK_B once someone has three in a row globally
    winner: int = EMPTY
    #: every sub-board decided and no global line
    draw: bool = False

    @property
    def over(self) -> bool:
        return bool(self.winner) or self.draw

    @property
    def to_move(self) -> int:
        """The mark whose turn it is (meaningless once the game is over)."""
        return MARK_A if self.moves % 2 == 0 else MARK_B

    def complete_field(self) -> list:
        return [list(self.cells[row * 9:row * 9 + 9]) for row in range(9)]

    def global_field(self) -> list:
        return [list(self.global_cells[row * 3:row * 3 + 3]) for row in range(3)]

    def allowed_sub_boards(self) -> list:
        """Flat indices of the sub-boards the next move may use (empty when over)."""
        if self.over:
            return []
        if self.last_move is not None and self.global_cells[self.last_move.target] == EMPTY:
            return [self.last_move.target]
        return [sub for sub in range(9) if self.global_cells[sub] == EMPTY]

    def encode_cells(self) -> str:
        return "".join(map(str, self.cells))


def new_board() -> Board:
    return Board()


def check_move(board: Board, mark: int, move: Move) -> None:
    """Raise IllegalMove unless `mark` may play `move` now."""
    if board.over:
        raise IllegalMove("game_over", "the game is over")
    if mark != board.to_move:
        raise IllegalMove("not_your_turn", "it is not your turn")
    if not all(0 <= v < SIZE for v in (move.sub_x, move.sub_y, move.x, move.y)):
        raise IllegalMove("out_of_range", "coordinates must be 0, 1 or 2")
    if board.global_cells[move.sub_index] != EMPTY:
        raise IllegalMove("sub_board_decided", "that sub-board is already decided")
    allowed = board.allowed_sub_boards()
    if move.sub_index not in allowed:
        target = board.last_move.target
        raise IllegalMove("wrong_sub_board", "you must play in sub-board (%d, %d)"
                          % (target % SIZE, target // SIZE))
    if board.cells[move.index] != EMPTY:
        raise IllegalMove("occupied", "that cell is already taken")


def play(board: Board, mark: int, move: Move) -> Board:
    """The board after `mark` plays `move`; IllegalMove (and no change) if it may not."""
    check_move(board, mark, move)
    cells = list(board.cells)
    cells[move.index] = mark
    global_cells = list(board.global_cells)
    global_cells[move.sub_index] = sub_board_state(cells, move.sub_index)
    winner = line_winner(global_cells)
    draw = not winner and all(global_cells)
    return Board(tuple(cells), tuple(global_cells), move, board.moves + 1, winner, draw)


def legal_moves(board: Board) -> Iterator[Move]:
    """Every move the player to move may make, in a stable order."""
    for sub in board.allowed_sub_boards():
        for index in _SUB_CELLS[sub]:
            if board.cells[index] == EMPTY:
                row, col = divmod(index, 9)
                yield Move(col // SIZE, row // SIZE, col % SIZE, row % SIZE)


def board_from_cells(cells, last_move: Optional[Move]) -> Board:
    """Rebuild a position from its 81 marks and its last move (e.g. from the database).

    The global field, the move count and the result are derived from the cells; marks
    must be EMPTY, MARK_A or MARK_B and A must have played as often as B or once more.
    """
    cells = tuple(int(mark) for mark in cells)
    if len(cells) != CELLS or any(mark not in (EMPTY, MARK_A, MARK_B) for mark in cells):
        raise ValueError("a board has 81 cells of 0, 1 or 2")
    count_a, count_b = cells.count(MARK_A), cells.count(MARK_B)
    if count_a - count_b not in (0, 1):
        raise ValueError("player A has %d marks and player B %d" % (count_a, count_b))
    if last_move is None and (count_a or count_b):
        raise ValueError("a board with marks needs its last move")
    if last_move is not None and cells[last_move.index] == EMPTY:
        raise ValueError("the last move's cell is empty")
    global_cells = tuple(sub_board_state(cells, sub) for sub in range(9))
    winner = line_winner(global_cells)
    draw = not winner and all(global_cells)
    return Board(cells, global_cells, last_move, count_a + count_b, winner, draw)


def decode_board(encoded: str, last_move: Optional[str]) -> Board:
    """The inverse of (Board.encode_cells(), Move.encode())."""
    return board_from_cells(encoded, Move.decode(last_move) if last_move else None)


def replay(moves) -> Board:
    """Play a sequence of Moves from the start, alternating A and B."""
    board = new_board()
    for move in moves:
        board = play(board, board.to_move, move)
    return board


def abandon_result(board: Board, leaver: int) -> tuple:
    """(winner mark, reason) when `leaver` ends the game early: the remaining player wins.

    Once both players have moved, leaving is a loss (ABANDONED, rated); before that the
    match is only CANCELLED: it ends the same way but is not rated.
    """
    return other(leaver), (ABANDONED if board.moves >= 2 else CANCELLED)


def timeout_result(board: Board) -> tuple:
    """(winner mark, reason) when the player to move let the move deadline pass."""
    return (MARK_B if board.to_move == MARK_A else MARK_A), TIMEOUT


def other(mark: int) -> int:
    return MARK_B if mark == MARK_A else MARK_A
