"""Block Attack's duel as pure state: boards, the shared 7-bag, scores, powers, the end.

No Twisted, no I/O, no clock: times are passed in (seconds), randomness comes from a
seeded `random.Random`. The clients play the falling blocks themselves; the server checks
what they report (boards, scores, pieces placed), hands out the piece sequence both share,
turns score into powers, applies powers to the opponent's incoming piece exactly once, and
decides how and when the game ends.
"""

from __future__ import annotations

import functools
import random
from itertools import chain
from typing import Optional

import attrs

ROWS, COLS = 20, 10
PIECES = "IJLOSTZ"
POWERS = "IRSN"  # invert, random shape, shape of the user's choice, shift left/right
MAX_CELL = 7
MAX_SCORE = 10 ** 9  # far past any real game; bounds what a report may claim
MAX_POWERS_HELD = 16  # powers earned while this many wait unused are lost


class RuleError(ValueError):
    """Reported state that breaks the rules; `code` goes on the wire."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


_CELLS = frozenset(range(MAX_CELL + 1))
_INT_ONLY = {int}
_LIST_ONLY = {list}
_COLS_ONLY = {COLS}


def check_board(board) -> list:
    """A 20x10 list of ints 0..7, or RuleError (checked row by row in C: set(map(type)))."""
    if type(board) is not list or len(board) != ROWS:
        raise RuleError("bad_board", "a board is %d rows" % ROWS)
    if set(map(type, board)) != _LIST_ONLY or set(map(len, board)) != _COLS_ONLY:
        raise RuleError("bad_board", "a board row is a list of %d columns" % COLS)
    cells = list(chain.from_iterable(board))
    # type() is exact: a bool (True == 1) is refused; then every value in 0..7
    if set(map(type, cells)) != _INT_ONLY or not _CELLS.issuperset(cells):
        raise RuleError("bad_board", "cells are integers 0..%d" % MAX_CELL)
    return board


def board_json(board: list) -> bytes:
    """A checked board as compact JSON, row by row from a cache keyed by the row's bytes
    (`bytes(row)` is one C call, and a game's wells repeat the same few rows): about a
    third of json.dumps' time. Every report is answered with both boards."""
    return b"[" + b",".join([_row_json(bytes(row)) for row in board]) + b"]"


@functools.lru_cache(maxsize=16384)
def _row_json(cells: bytes) -> bytes:
    return b"[" + b",".join(b"%d" % cell for cell in cells) + b"]"


def empty_board() -> list:
    return [[0] * COLS for _ in range(ROWS)]


def topped_out(board: list) -> bool:
    """Blocks in the top row: the stack reached the spawn area."""
    return any(board[0])


class PieceSequence:
    """The 7-bag sequence both players share: each bag holds every piece once, shuffled
    by a seeded generator, so piece n is the same for both players."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)
        self.pieces: list[str] = []

    def __getitem__(self, index: int) -> str:
        while len(self.pieces) <= index:
            bag = list(PIECES)
            self.random.shuffle(bag)
            self.pieces.extend(bag)
        return self.pieces[index]


@attrs.frozen
class Piece:
    """The next piece as a player must spawn it (a power may have changed it)."""

    shape: str
    inverted: bool = False
    shift: int = 0  # columns, negative = left

    def describe(self) -> dict:
        return {"shape": self.shape, "inverted": self.inverted, "shift": self.shift}


@attrs.frozen
class PowerEvent:
    """A power that hit a player: delivered (resent) until that player acknowledges `id`."""

    id: int
    power: str
    by: str
    piece_index: int
    piece: Piece

    def describe(self) -> dict:
        return {"id": self.id, "power": self.power, "by": self.by,
                "piece_index": self.piece_index, **self.piece.describe()}


@attrs.define
class Side:
    name: str
    board: list = attrs.Factory(empty_board)
    score: int = 0
    pieces_placed: int = 0
    powers_earned: int = 0
    powers_available: list = attrs.Factory(list)
    #: piece index -> Piece changed by the opponent's powers
    changed: dict = attrs.Factory(dict)
    #: powers that hit this side and are not acknowledged yet, by id
    incoming: dict = attrs.Factory(dict)
    last_heard: float = 0.0
    reported: bool = False  # has this player's game_flux ever been applied


@attrs.define
class Duel:
    """One game between two names; every method takes the current time in seconds."""

    names: tuple
    seed: int
    started: float
    length: float = 180.0
    silence_timeout: float = 15.0
    power_every: int = 500
    max_pieces_per_second: float = 10.0
    sides: dict = attrs.Factory(dict)
    sequence: PieceSequence = None
    random: random.Random = None
    power_ids: int = 0
    finished: bool = False
    winner: Optional[str] = None
    reason: Optional[str] = None
    ended: Optional[float] = None

    def __attrs_post_init__(self):
        self.sides = {name: Side(name, last_heard=self.started) for name in self.names}
        self.sequence = PieceSequence(self.seed)
        self.random = random.Random(self.seed ^ 0x5EED)

    def opponent(self, name: str) -> Side:
        return self.sides[self.names[1] if name == self.names[0] else self.names[0]]

    def time_left(self, now: float) -> float:
        end = self.ended if self.finished else now
        return max(0.0, self.length - (end - self.started))

    def next_piece(self, name: str) -> Piece:
        side = self.sides[name]
        index = side.pieces_placed
        return side.changed.get(index) or Piece(self.sequence[index])

    # -- a report from a player ------------------------------------------------------------

    def report(self, name: str, now: float, board, score, pieces_placed=None,
               power_used=None, acked_powers=()) -> Optional[PowerEvent]:
        """Apply one accepted game_flux; returns the power event it caused, if any.

        Raises RuleError (and changes nothing) for an impossible report."""
        if self.finished:
            raise RuleError("game_over", "the game has ended")
        side = self.sides[name]
        check_board(board)
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= MAX_SCORE:
            raise RuleError("bad_score", "user_score is an integer 0..%d" % MAX_SCORE)
        if pieces_placed is not None:
            if isinstance(pieces_placed, bool) or not isinstance(pieces_placed, int):
                raise RuleError("bad_pieces", "pieces_placed is an integer")
            limit = int((now - self.started + 1) * self.max_pieces_per_second) + 1
            if not side.pieces_placed <= pieces_placed <= limit:
                raise RuleError("bad_pieces", "pieces_placed went back or is impossible")
        power = self._check_power(side, power_used)
        # all checks passed: apply
        side.last_heard = now
        side.reported = True
        side.board = board
        side.score = max(side.score, score)  # a lower score (a stale view) never counts
        if pieces_placed is not None:
            side.pieces_placed = pieces_placed
        for event_id in acked_powers:
            side.incoming.pop(event_id, None)
        earned = side.score // self.power_every
        if earned > side.powers_earned:
            room = MAX_POWERS_HELD - len(side.powers_available)
            side.powers_available.extend(
                POWERS[n % len(POWERS)]
                for n in range(side.powers_earned, min(earned, side.powers_earned + room)))
            side.powers_earned = earned
        event = self._use_power(side, *power) if power else None
        if topped_out(board):
            self.finish(now, self.opponent(name).name, "top_out")
        return event

    def _check_power(self, side: Side, power_used):
        if power_used in (None, "", []):
            return None
        if isinstance(power_used, str):
            power_used = {"power": power_used}
        if not isinstance(power_used, dict) or power_used.get("power") not in tuple(POWERS):
            raise RuleError("bad_power", "power_used is one of I R S N (or {power, shape, "
                                         "direction})")
        letter = power_used["power"]
        if letter not in side.powers_available:
            raise RuleError("power_unavailable", "power %s is not available" % letter)
        shape = power_used.get("shape")
        if letter == "S" and shape not in tuple(PIECES):
            raise RuleError("bad_power", "power S needs a shape, one of %s" % PIECES)
        direction = power_used.get("direction", "left")
        if letter == "N" and direction not in ("left", "right"):
            raise RuleError("bad_power", "power N needs direction left or right")
        return letter, shape, direction

    def _use_power(self, side: Side, letter: str, shape, direction) -> PowerEvent:
        side.powers_available.remove(letter)
        target = self.opponent(side.name)
        index = target.pieces_placed
        piece = target.changed.get(index) or Piece(self.sequence[index])
        if letter == "I":
            piece = attrs.evolve(piece, inverted=not piece.inverted)
        elif letter == "R":
            piece = attrs.evolve(piece, shape=self.random.choice(PIECES))
        elif letter == "S":
            piece = attrs.evolve(piece, shape=shape)
        else:
            piece = attrs.evolve(piece, shift=piece.shift + (-1 if direction == "left" else 1))
        target.changed[index] = piece
        self.power_ids += 1
        event = PowerEvent(self.power_ids, letter, side.name, index, piece)
        target.incoming[event.id] = event
        return event

    # -- the end ---------------------------------------------------------------------------

    def check_time(self, now: float) -> None:
        """End the game on the clock or on a silent player. A player never heard from
        has not shown up: the game ends `no_show`, which nobody wins and nothing rates."""
        if self.finished:
            return
        silent = [side for side in self.sides.values()
                  if now - side.last_heard >= self.silence_timeout]
        if silent:
            if not all(side.reported for side in self.sides.values()):
                # someone never showed up (whoever else fell silent): nobody wins
                self.finish(now, None, "no_show")
            else:
                self.finish(now, self.opponent(silent[0].name).name, "timeout")
            return
        if now - self.started >= self.length:
            a, b = (self.sides[n] for n in self.names)
            winner = None if a.score == b.score else (a.name if a.score > b.score else b.name)
            self.finish(self.started + self.length, winner, "time")

    def lost(self, name: str, now: float) -> None:
        """A player who can no longer be heard (the node it played through is gone): the
        game ends now as the silence timeout would end it later."""
        if self.finished:
            return
        if not all(side.reported for side in self.sides.values()):
            self.finish(now, None, "no_show")
        else:
            self.finish(now, self.opponent(name).name, "timeout")

    def forfeit(self, name: str, now: float) -> None:
        if not self.finished:
            self.finish(now, self.opponent(name).name, "forfeit")

    def finish(self, now: float, winner: Optional[str], reason: str) -> None:
        self.finished = True
        self.winner = winner
        self.reason = reason
        self.ended = now

    def scores(self) -> dict:
        return {name: self.sides[name].score for name in self.names}
