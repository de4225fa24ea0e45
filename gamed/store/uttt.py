"""uttt's own tables: open matches with their position and turn state, the move log, and
the link from a finished match to its shared result row.

The game hands the store *write operations* (`NewMatch`, `MoveMade`, `MatchClosed`) and
the store applies a whole batch of them in one transaction (`write_batch`): the game
group-commits every move that arrived while the previous batch was being written, so a
move is durable before anyone hears of it without paying one commit per move. A closing
operation records the result and the rating changes in the same transaction
(`ratings.record_match_txn`), so a result is never announced before it is stored.
"""

from __future__ import annotations

from typing import Optional

import attrs
from twisted.internet import defer

from gamed.store.database import Cursor, Database
from gamed.store.ratings import MatchResult, read_rating, record_match_txn
from gamed.store.accounts import iso

GAME = "uttt"


class StaleMatch(Exception):
    """The match row is not in the state the write expected (closed, or a move ahead)."""


# -- write operations -----------------------------------------------------------------------

@attrs.frozen
class NewMatch:
    player_a: int
    player_b: int
    ranked: bool
    created_at: float


@attrs.frozen
class MoveMade:
    match_id: int
    moves_before: int  # the move count the match row must still have
    mark: int
    sub_x: int
    sub_y: int
    x: int
    y: int
    board: str  # the 81 marks after the move
    last_move: str  # Move.encode()
    played_at: float


@attrs.frozen
class MatchClosed:
    match_id: int
    winner: int  # 0, 1 (player_a) or 2 (player_b)
    is_draw: bool
    reason: str
    finished_at: float
    #: the result to record in the shared tables (None: nothing to rate or record)
    result: Optional[MatchResult] = None
    #: the final move, when a move ended the game (written in the same transaction)
    move: Optional[MoveMade] = None
    #: whether each player (a, b) has already been shown the result
    seen: tuple = (False, False)
    #: the move count the match must still have (None: any); a node of a cluster whose
    #: copy of the match is behind cannot end it (a timeout seen on an old position)
    moves_before: Optional[int] = None


# -- read models ----------------------------------------------------------------------------

@attrs.frozen
class StoredMatch:
    id: int
    player_a: int
    player_b: int
    name_a: str
    name_b: str
    ranked: bool
    board: str
    last_move: Optional[str]
    moves: int
    created_at: float
    last_move_at: float
    is_open: bool = True
    winner: int = 0
    is_draw: bool = False
    reason: Optional[str] = None
    guest_a: bool = False
    guest_b: bool = False


@attrs.frozen
class EloSummary:
    rating: Optional[float]
    rank: Optional[int]
    top: tuple  # ((name, rating), ...)


_MATCH_COLUMNS = (
    "m.id, m.player_a, m.player_b, a.name_key, b.name_key, m.ranked, m.board, m.last_move,"
    " m.moves, m.created_at, m.last_move_at, m.is_open, m.winner, m.is_draw, m.reason,"
    " a.is_guest, b.is_guest"
    " FROM uttt_matches m JOIN accounts a ON a.id = m.player_a"
    " JOIN accounts b ON b.id = m.player_b")


def _stored(row) -> StoredMatch:
    return StoredMatch(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7],
                       row[8], float(row[9]), float(row[10]), bool(row[11]), row[12],
                       bool(row[13]), row[14], bool(row[15]), bool(row[16]))


EMPTY_BOARD = "0" * 81


# -- transaction bodies ---------------------------------------------------------------------

def _new_match(cur: Cursor, op: NewMatch) -> int:
    return cur.insert(
        "INSERT INTO uttt_matches (player_a, player_b, ranked, board, last_move, moves,"
        " is_open, created_at, last_move_at) VALUES (?, ?, ?, ?, NULL, 0, 1, ?, ?)",
        (op.player_a, op.player_b, int(op.ranked), EMPTY_BOARD, op.created_at, op.created_at))


def _move_made(cur: Cursor, op: MoveMade) -> None:
    updated = cur.execute(
        "UPDATE uttt_matches SET board = ?, last_move = ?, moves = ?, last_move_at = ?"
        " WHERE id = ? AND moves = ? AND is_open = 1",
        (op.board, op.last_move, op.moves_before + 1, op.played_at, op.match_id,
         op.moves_before)).rowcount
    if updated != 1:
        raise StaleMatch("match %d is not open at move %d" % (op.match_id, op.moves_before))
    cur.execute("INSERT INTO uttt_moves (match_id, seq, mark, sub_x, sub_y, x, y, played_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (op.match_id, op.moves_before + 1, op.mark, op.sub_x, op.sub_y, op.x, op.y,
                 op.played_at))


def _match_closed(cur: Cursor, op: MatchClosed):
    if op.move is not None:
        _move_made(cur, op.move)
    recorded = None
    if op.result is not None:
        recorded = record_match_txn(cur, op.result, iso(op.finished_at))
    # a node of a cluster whose copy is behind must not end the match (moves_before)
    expect = op.moves_before if op.move is None else None
    updated = cur.execute(
        "UPDATE uttt_matches SET is_open = 0, winner = ?, is_draw = ?, reason = ?,"
        " finished_at = ?, result_id = ?, seen_a = ?, seen_b = ? WHERE id = ? AND is_open = 1"
        + ("" if expect is None else " AND moves = ?"),
        (op.winner, int(op.is_draw), op.reason, op.finished_at,
         recorded.match_id if recorded else None, int(op.seen[0]), int(op.seen[1]),
         op.match_id) + (() if expect is None else (expect,))).rowcount
    if updated != 1:
        raise StaleMatch("match %d is already closed or not at move %s"
                         % (op.match_id, expect))
    return recorded


#: moves written per bulk statement (8 parameters each: under SQLite's 999 limit)
BULK_CHUNK = 100


def _moves_bulk(cur: Cursor, ops: list) -> None:
    """Several moves of distinct matches in two statements per chunk instead of two per
    move (on PostgreSQL every statement is a round trip)."""
    for start in range(0, len(ops), BULK_CHUNK):
        chunk = ops[start:start + BULK_CHUNK]
        rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        args = []
        for op in chunk:
            args += [op.match_id, op.moves_before, op.board, op.last_move, op.played_at,
                     op.moves_before + 1]
        updated = cur.execute(
            "WITH v (id, moves_before, board, last_move, played_at, moves_after) AS"
            " (VALUES " + rows + ") UPDATE uttt_matches SET board = v.board,"
            " last_move = v.last_move, moves = v.moves_after, last_move_at = v.played_at"
            " FROM v WHERE uttt_matches.id = v.id AND uttt_matches.moves = v.moves_before"
            " AND uttt_matches.is_open = 1", args).rowcount
        if updated != len(chunk):
            raise StaleMatch("%d of %d matches were not at the expected move"
                             % (len(chunk) - updated, len(chunk)))
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        args = []
        for op in chunk:
            args += [op.match_id, op.moves_before + 1, op.mark, op.sub_x, op.sub_y, op.x, op.y,
                     op.played_at]
        cur.execute("INSERT INTO uttt_moves (match_id, seq, mark, sub_x, sub_y, x, y,"
                    " played_at) VALUES " + rows, args)


_WRITERS = {NewMatch: _new_match, MoveMade: _move_made, MatchClosed: _match_closed}


def write_batch_txn(cur: Cursor, ops) -> list:
    """Apply a batch in order.

    On PostgreSQL, where each statement is a round trip, the plain moves of distinct
    matches go in bulk statements (the game never has two writes of one match in a batch:
    a match waits for its write before the next). SQLite runs in-process, where single-row
    statements on the primary key are cheaper than its UPDATE ... FROM.
    """
    moves = [op for op in ops if type(op) is MoveMade]
    bulk = (cur.engine.name == "postgresql" and len(moves) > 1
            and len({op.match_id for op in moves}) == len(moves))
    if bulk:
        _moves_bulk(cur, moves)
    return [None if bulk and type(op) is MoveMade else _WRITERS[type(op)](cur, op)
            for op in ops]


class UtttStore:
    """All SQL of the uttt game."""

    def __init__(self, database: Database):
        self.database = database

    @property
    def write_concurrency(self) -> int:
        """Write transactions worth running at once: one on SQLite (a single writer); on
        PostgreSQL a few, leaving pool connections for the other services."""
        pool = self.database.engine.max_connections
        return 1 if self.database.name == "sqlite" else max(1, min(3, pool - 2))

    def write_batch(self, ops) -> defer.Deferred:
        """Apply the operations in order, in one transaction; a list of their results
        (the new id for NewMatch, a RecordedMatch or None for MatchClosed)."""
        ops = list(ops)
        return self.database.run_interaction("uttt_write", write_batch_txn, ops)

    def open_matches(self) -> defer.Deferred:
        """Every open match (loaded at start: the game keeps them in memory)."""
        return self.database.run_interaction(
            "uttt_open_matches", lambda cur: [_stored(row) for row in cur.execute(
                "SELECT " + _MATCH_COLUMNS + " WHERE m.is_open = 1 ORDER BY m.id").fetchall()])

    def open_matches_of(self, account_id: int) -> defer.Deferred:
        """The account's open matches (a cluster node reads them at each login)."""
        return self.database.run_interaction(
            "uttt_open_matches_of", lambda cur: [_stored(row) for row in cur.execute(
                "SELECT " + _MATCH_COLUMNS + " WHERE m.is_open = 1 AND"
                " (m.player_a = ? OR m.player_b = ?) ORDER BY m.id",
                (account_id, account_id)).fetchall()])

    def get_match(self, match_id: int) -> defer.Deferred:
        return self.database.run_interaction(
            "uttt_get_match", lambda cur: next(
                (_stored(row) for row in cur.execute(
                    "SELECT " + _MATCH_COLUMNS + " WHERE m.id = ?", (match_id,)).fetchall()),
                None))

    def moves(self, match_id: int) -> defer.Deferred:
        """[(seq, mark, sub_x, sub_y, x, y, played_at)] in order."""
        return self.database.run_interaction(
            "uttt_moves", lambda cur: [tuple(row) for row in cur.execute(
                "SELECT seq, mark, sub_x, sub_y, x, y, played_at FROM uttt_moves"
                " WHERE match_id = ? ORDER BY seq", (match_id,)).fetchall()])

    def take_unseen_results(self, account_id: int, limit: int = 20) -> defer.Deferred:
        """Finished matches whose result this player has not been shown yet (newest last);
        they are marked as shown in the same transaction."""

        def take(cur: Cursor):
            # one indexed SELECT per seat (player, is_open, seen): with an OR across the
            # seats SQLite read every finished match of every player at each login
            rows = cur.execute(
                "SELECT " + _MATCH_COLUMNS + " WHERE m.player_a = ? AND m.is_open = 0"
                " AND m.seen_a = 0 UNION ALL SELECT " + _MATCH_COLUMNS + " WHERE"
                " m.player_b = ? AND m.is_open = 0 AND m.seen_b = 0 ORDER BY 1 DESC LIMIT ?",
                (account_id, account_id, limit)).fetchall()
            found = [_stored(row) for row in reversed(rows)]
            cur.execute("UPDATE uttt_matches SET seen_a = 1 WHERE player_a = ? AND is_open = 0"
                        " AND seen_a = 0", (account_id,))
            cur.execute("UPDATE uttt_matches SET seen_b = 1 WHERE player_b = ? AND is_open = 0"
                        " AND seen_b = 0", (account_id,))
            return found

        return self.database.run_interaction("uttt_unseen_results", take)

    def mark_unseen(self, match_id: int, account_id: int) -> defer.Deferred:
        """This player has not been shown the match's result after all (it went offline
        while the result was being written): show it at its next login."""

        def mark(cur: Cursor):
            cur.execute("UPDATE uttt_matches SET seen_a = 0 WHERE id = ? AND player_a = ?",
                        (match_id, account_id))
            cur.execute("UPDATE uttt_matches SET seen_b = 0 WHERE id = ? AND player_b = ?",
                        (match_id, account_id))

        return self.database.run_interaction("uttt_mark_unseen", mark)

    def elo_summary(self, account_id: Optional[int], top: int = 10) -> defer.Deferred:
        """The player's rating and rank (None for None) and the top of the leaderboard.

        A registered player without a rating row yet is shown at the default rating, ranked
        after everyone rated higher.
        """

        def summary(cur: Cursor):
            rating = rank = None
            if account_id is not None:
                rating = read_rating(cur, account_id, GAME).rating
                rank = 1 + cur.scalar(
                    "SELECT COUNT(*) FROM ratings WHERE game = ? AND (rating > ? OR"
                    " (rating = ? AND account_id < ?))", (GAME, rating, rating, account_id))
            rows = cur.execute(
                "SELECT a.name_key, r.rating FROM ratings r JOIN accounts a"
                " ON a.id = r.account_id WHERE r.game = ? ORDER BY r.rating DESC,"
                " r.account_id LIMIT ?", (GAME, top)).fetchall()
            return EloSummary(rating, rank, tuple((row[0], float(row[1])) for row in rows))

        return self.database.run_read("uttt_elo_summary", summary)
