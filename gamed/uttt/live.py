"""What the uttt service keeps of a match in memory: its players, the committed position,
and the client's view of it (`state_view`, `revoke_time`)."""

from __future__ import annotations

import datetime
from typing import Optional

import attrs

from gamed.uttt import rules
from gamed.uttt.messages import LastMove, MatchState

DEFAULT_RATING = 1000.0


@attrs.frozen
class Tuning:
    """The service's knobs; taken from the [uttt] config section unless a test passes
    its own."""

    #: random matching: accepted rating gap at first, its growth per second of waiting,
    #: and its maximum
    match_window: float = 100.0
    match_window_widen: float = 25.0
    match_window_max: float = 1000.0
    #: seconds between re-checks of the random-match queue
    pair_interval: float = 2.0
    #: requests a connection may have waiting while an earlier one is served
    max_queued_requests: int = 64
    #: finished matches a returning player is shown at login
    unseen_results: int = 20


@attrs.define
class Player:
    """An account as uttt sees it (names are the lower-cased account names)."""

    id: int
    name: str
    guest: bool
    rating: float = DEFAULT_RATING


@attrs.define(eq=False)
class LiveMatch:
    """An open match in memory; `board` is the committed position."""

    id: int
    player_a: Player
    player_b: Player
    ranked: bool
    board: rules.Board
    created_at: float
    last_move_at: float
    #: a write for this match is in flight: further changes wait for it
    pending: bool = False
    #: (winner mark, is_draw, reason) once finished
    result: Optional[tuple] = None
    deadline_call: object = None

    @property
    def key(self) -> str:
        return str(self.id)

    def mark_of(self, account_id: int) -> int:
        if account_id == self.player_a.id:
            return rules.MARK_A
        if account_id == self.player_b.id:
            return rules.MARK_B
        return rules.EMPTY

    def player(self, mark: int) -> Player:
        return self.player_a if mark == rules.MARK_A else self.player_b

    def players(self) -> tuple:
        return (self.player_a, self.player_b)


def revoke_time(seconds: float) -> str:
    """The client's "YYYY-MM-DD HH:MM:SS" (UTC)."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def state_view(board: rules.Board, name_a: str, name_b: str,
               result: Optional[tuple] = None) -> MatchState:
    """The client's match_state for a position (and a result, for early endings)."""
    if result is None and board.over:
        result = (board.winner, board.draw, rules.WON if board.winner else rules.DRAW)
    over = result is not None
    winner = result[0] if over else rules.EMPTY
    to_move = None if over else (name_a if board.to_move == rules.MARK_A else name_b)
    last = board.last_move
    return MatchState(
        complete_field=board.complete_field(), global_field=board.global_field(),
        last_move=LastMove(last.sub_x, last.sub_y, last.x, last.y) if last else None,
        game_over=over, is_draw=bool(over and result[1]),
        player_won=(name_a if winner == rules.MARK_A else name_b if winner == rules.MARK_B
                    else None),
        current_player=to_move, active_player=to_move, player_a=name_a, player_b=name_b)
