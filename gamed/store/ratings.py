"""Ratings per game, finished matches with their players, leaderboards and history.

`record_match` writes a match, its players and every rating change in one transaction:
a result is either wholly stored or not at all, and is stored before anyone announces it.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional

import attrs
from twisted.internet import defer

from gamed.core.elo import DEFAULT_RATING, elo_changes
from gamed.store.database import Cursor, Database

OUTCOMES = ("win", "loss", "draw")


@attrs.frozen
class Rating:
    account_id: int
    game: str
    rating: float = DEFAULT_RATING
    wins: int = 0
    losses: int = 0
    draws: int = 0

    @property
    def played(self) -> int:
        return self.wins + self.losses + self.draws

    @property
    def winrate(self) -> float:
        """Percent of games won (0 with no game)."""
        return 100.0 * self.wins / self.played if self.played else 0.0


@attrs.frozen
class MatchPlayer:
    account_id: int
    outcome: str = attrs.field(validator=attrs.validators.in_(OUTCOMES))
    score: float = 0
    stats: dict = attrs.Factory(dict)


@attrs.frozen
class MatchResult:
    game: str
    players: tuple = attrs.field(converter=tuple)
    reason: str
    ranked: bool = True
    k_factor: float = 32.0
    started_at: Optional[str] = None
    ended_at: Optional[str] = None
    details: dict = attrs.Factory(dict)
    #: unique per match when given: recording the same key again returns the stored result
    key: Optional[str] = None


@attrs.frozen
class RatingChange:
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


@attrs.frozen
class RecordedMatch:
    match_id: int
    changes: dict  # account_id -> RatingChange
    ratings: dict  # account_id -> Rating after the match


@attrs.frozen
class LeaderboardRow:
    rank: int
    account_id: int
    name: str
    rating: float
    wins: int
    losses: int
    draws: int


@attrs.frozen
class MatchSummary:
    match_id: int
    game: str
    ended_at: str
    reason: str
    ranked: bool
    outcome: str
    score: float
    opponents: tuple
    opponent_scores: tuple
    rating_before: Optional[float]
    rating_after: Optional[float]
    details: dict


_RATING = "SELECT account_id, game, rating, wins, losses, draws FROM ratings"


def _rating(row) -> Rating:
    return Rating(row[0], row[1], float(row[2]), row[3], row[4], row[5])


def read_rating(cur: Cursor, account_id: int, game: str) -> Rating:
    row = cur.execute(_RATING + " WHERE account_id = ? AND game = ?",
                      (account_id, game)).fetchone()
    return _rating(row) if row else Rating(account_id, game)


def write_rating(cur: Cursor, rating: Rating) -> None:
    """Its row exists: lock_ratings made it in this transaction."""
    cur.execute("UPDATE ratings SET rating = ?, wins = ?, losses = ?, draws = ?"
                " WHERE account_id = ? AND game = ?",
                (rating.rating, rating.wins, rating.losses, rating.draws, rating.account_id,
                 rating.game))


def lock_ratings(cur: Cursor, game: str, account_ids) -> None:
    """Make sure each player has a rating row and, on PostgreSQL, hold it until commit:
    two results for one player at once then apply one after the other (under READ
    COMMITTED both would read the same rating, and the second write would undo the
    first). In account order, so two transactions never wait on each other. SQLite's
    single writer serialises them already."""
    ids = sorted(set(account_ids))
    for account_id in ids:
        cur.execute("INSERT INTO ratings (account_id, game, rating, wins, losses, draws)"
                    " VALUES (?, ?, ?, 0, 0, 0) ON CONFLICT (account_id, game) DO NOTHING",
                    (account_id, game, Rating(account_id, game).rating))
    if cur.engine.name == "postgresql":
        for account_id in ids:
            cur.execute("SELECT 1 FROM ratings WHERE account_id = ? AND game = ? FOR UPDATE",
                        (account_id, game))


def stored_result(cur: Cursor, key: str) -> Optional[RecordedMatch]:
    """The result already recorded under this key, as record_match returned it."""
    row = cur.execute("SELECT id, game FROM matches WHERE result_key = ?", (key,)).fetchone()
    if row is None:
        return None
    match_id, game = row
    changes, after = {}, {}
    for account_id, before, rating_after in cur.execute(
            "SELECT account_id, rating_before, rating_after FROM match_players"
            " WHERE match_id = ? ORDER BY seat", (match_id,)).fetchall():
        changes[account_id] = RatingChange(float(before), float(rating_after))
        after[account_id] = read_rating(cur, account_id, game)
    return RecordedMatch(match_id, changes, after)


def record_match_txn(cur: Cursor, result: MatchResult, ended_at: str) -> RecordedMatch:
    """The body of record_match, usable inside a game store's own transaction."""
    if result.key is not None:
        stored = stored_result(cur, result.key)
        if stored is not None:
            return stored  # a retry of a write that went through
    if result.ranked:
        lock_ratings(cur, result.game, [p.account_id for p in result.players])
    before = {p.account_id: read_rating(cur, p.account_id, result.game) for p in result.players}
    if result.ranked and len(result.players) == 2:
        a, b = result.players
        new_a, new_b = elo_changes(before[a.account_id].rating, before[b.account_id].rating,
                                   _points(a.outcome), result.k_factor)
        new_ratings = {a.account_id: new_a, b.account_id: new_b}
    else:
        new_ratings = {p.account_id: before[p.account_id].rating for p in result.players}
    match_id = cur.insert(
        "INSERT INTO matches (game, started_at, ended_at, reason, ranked, details, result_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (result.game, result.started_at, result.ended_at or ended_at, result.reason,
         int(result.ranked), json.dumps(result.details), result.key))
    changes, after = {}, {}
    for seat, player in enumerate(result.players):
        old = before[player.account_id]
        rating = old
        if result.ranked:
            rating = attrs.evolve(
                old, rating=new_ratings[player.account_id],
                wins=old.wins + (player.outcome == "win"),
                losses=old.losses + (player.outcome == "loss"),
                draws=old.draws + (player.outcome == "draw"))
            write_rating(cur, rating)
        changes[player.account_id] = RatingChange(old.rating, rating.rating)
        after[player.account_id] = rating
        cur.execute(
            "INSERT INTO match_players (match_id, account_id, seat, outcome, score,"
            " rating_before, rating_after, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (match_id, player.account_id, seat, player.outcome, player.score, old.rating,
             rating.rating, json.dumps(player.stats)))
    return RecordedMatch(match_id, changes, after)


def _newest_matches(game: Optional[str], player_id: Optional[int],
                    before_id: Optional[int]) -> tuple:
    """The optional filters of the match listings: (" AND ..." text, its parameters)."""
    conditions, args = [], []
    if game is not None:
        conditions.append(" AND m.game = ?")
        args.append(game)
    if player_id is not None:
        conditions.append(" AND m.id IN (SELECT match_id FROM match_players"
                          " WHERE account_id = ?)")
        args.append(player_id)
    if before_id is not None:
        conditions.append(" AND m.id < ?")
        args.append(before_id)
    return "".join(conditions), args


def leaderboard_txn(cur: Cursor, game: str, limit: int, offset: int) -> list:
    rows = cur.execute(
        "SELECT r.account_id, a.name, r.rating, r.wins, r.losses, r.draws"
        " FROM ratings r JOIN accounts a ON a.id = r.account_id"
        " WHERE r.game = ? ORDER BY r.rating DESC, r.account_id LIMIT ? OFFSET ?",
        (game, limit, offset)).fetchall()
    return [LeaderboardRow(offset + i + 1, row[0], row[1], float(row[2]), row[3],
                           row[4], row[5]) for i, row in enumerate(rows)]


def ranked_leaderboard_txn(cur: Cursor, ranks, game: str, limit: int, offset: int) -> list:
    """leaderboard_txn's rows, the page's players taken from a RankIndex: OFFSET read
    that many index entries first (9.6 ms for the last page of 10k players on SQLite);
    here the page's own rows by their keys. An account deleted since the index's last
    full read is left out."""
    ranks.refresh(cur)
    ids = ranks.page(game, offset, limit)
    if not ids:
        return []
    found = {row[0]: row for row in cur.execute(
        "SELECT r.account_id, a.name, r.rating, r.wins, r.losses, r.draws"
        " FROM ratings r JOIN accounts a ON a.id = r.account_id"
        " WHERE r.game = ? AND r.account_id IN (%s)" % ",".join("?" * len(ids)),
        [game, *ids]).fetchall()}
    return [LeaderboardRow(offset + i + 1, row[0], row[1], float(row[2]), row[3], row[4],
                           row[5]) for i, row in ((i, found.get(x)) for i, x in enumerate(ids))
            if row is not None]


_MATCH = ("SELECT m.id, m.game, m.started_at, m.ended_at, m.reason, m.ranked, m.details"
          " FROM matches m")


def _match_dicts(cur: Cursor, rows) -> list:
    """Match rows (_MATCH's columns) as dicts with their players, in two queries."""
    players: dict = {row[0]: [] for row in rows}
    if rows:
        for p in cur.execute(
                "SELECT mp.match_id, a.name, mp.outcome, mp.score, mp.rating_before,"
                " mp.rating_after FROM match_players mp JOIN accounts a ON a.id = mp.account_id"
                " WHERE mp.match_id IN (%s) ORDER BY mp.match_id, mp.seat"
                % ",".join("?" * len(rows)), list(players)).fetchall():
            players[p[0]].append({"name": p[1], "outcome": p[2], "score": p[3],
                                  "rating_before": p[4], "rating_after": p[5]})
    return [{"id": row[0], "game": row[1], "started_at": row[2], "ended_at": row[3],
             "reason": row[4], "ranked": bool(row[5]), "details": json.loads(row[6] or "{}"),
             "players": players[row[0]]} for row in rows]


def matches_txn(cur: Cursor, game: Optional[str], player_id: Optional[int], limit: int,
                before_id: Optional[int]) -> list:
    conditions, args = _newest_matches(game, player_id, before_id)
    return _match_dicts(cur, cur.execute(
        _MATCH + " WHERE 1 = 1" + conditions + " ORDER BY m.id DESC LIMIT ?",
        [*args, limit]).fetchall())


def rank_txn(cur: Cursor, account_id: int, game: str) -> Optional[int]:
    row = cur.execute("SELECT rating FROM ratings WHERE account_id = ? AND game = ?",
                      (account_id, game)).fetchone()
    if row is None:
        return None
    # two range counts on the (game, rating DESC, account_id) index (one count with an
    # OR would scan the whole game's part of it)
    higher = cur.scalar("SELECT COUNT(*) FROM ratings WHERE game = ? AND rating > ?",
                        (game, row[0]))
    tied_before = cur.scalar("SELECT COUNT(*) FROM ratings WHERE game = ? AND rating = ?"
                             " AND account_id < ?", (game, row[0], account_id))
    return higher + tied_before + 1


def history_txn(cur: Cursor, account_id: int, game: Optional[str], limit: int,
                before_id: Optional[int]) -> list:
    sql = ("SELECT m.id, m.game, m.ended_at, m.reason, m.ranked, mp.outcome, mp.score,"
           " mp.rating_before, mp.rating_after, m.details"
           " FROM match_players mp JOIN matches m ON m.id = mp.match_id"
           " WHERE mp.account_id = ?")
    conditions, args = _newest_matches(game, None, before_id)
    rows = cur.execute(sql + conditions + " ORDER BY mp.match_id DESC LIMIT ?",
                       [account_id, *args, limit]).fetchall()
    others: dict = {row[0]: [] for row in rows}
    if rows:  # every opponent in one query (a page is one short transaction)
        for match_id, name, score in cur.execute(
                "SELECT mp.match_id, a.name, mp.score FROM match_players mp JOIN accounts a"
                " ON a.id = mp.account_id WHERE mp.match_id IN (%s) AND mp.account_id <> ?"
                " ORDER BY mp.match_id, mp.seat" % ",".join("?" * len(rows)),
                [*others, account_id]).fetchall():
            others[match_id].append((name, float(score)))
    return [MatchSummary(
        row[0], row[1], row[2], row[3], bool(row[4]), row[5], float(row[6]),
        tuple(o[0] for o in others[row[0]]), tuple(o[1] for o in others[row[0]]),
        row[7], row[8], json.loads(row[9] or "{}")) for row in rows]


def rating_points_txn(cur: Cursor, account_id: int, limit: int) -> list:
    rows = cur.execute(
        "SELECT m.id, m.game, m.ended_at, mp.rating_after FROM match_players mp"
        " JOIN matches m ON m.id = mp.match_id WHERE mp.account_id = ? AND m.ranked = 1"
        " ORDER BY mp.match_id DESC LIMIT ?", (account_id, limit)).fetchall()
    return [(r[0], r[1], r[2], float(r[3])) for r in reversed(rows) if r[3] is not None]


def player_page_txn(cur: Cursor, account_id: int, limit: int, before_id: Optional[int],
                    points: int, ranks=None) -> tuple:
    """([(Rating, rank)] by game, [MatchSummary] newest first, the chart's
    [(match_id, game, ended_at, rating_after)] oldest first). `ranks`: a RankIndex to read
    the ranks from (else each is two range counts on the leaderboard index)."""
    if ranks is not None:
        ranks.refresh(cur)
        ranked = [(rating, ranks.rank(rating.game, rating.rating, account_id))
                  for rating in (_rating(row) for row in cur.execute(
                      _RATING + " WHERE account_id = ? ORDER BY game",
                      (account_id,)).fetchall())]
    else:
        ranked = [(_rating(row), row[6] + row[7] + 1) for row in cur.execute(
            "SELECT r.account_id, r.game, r.rating, r.wins, r.losses, r.draws,"
            " (SELECT COUNT(*) FROM ratings x WHERE x.game = r.game"
            "  AND x.rating > r.rating),"
            " (SELECT COUNT(*) FROM ratings x WHERE x.game = r.game"
            "  AND x.rating = r.rating AND x.account_id < r.account_id)"
            " FROM ratings r WHERE r.account_id = ? ORDER BY r.game",
            (account_id,)).fetchall()]
    return (ranked, history_txn(cur, account_id, None, limit, before_id),
            rating_points_txn(cur, account_id, points))


def _points(outcome: str) -> float:
    return {"win": 1.0, "loss": 0.0, "draw": 0.5}[outcome]


class RatingStore:
    def __init__(self, database: Database, now=None, ranks=None):
        self.database = database
        # `now` gives the wall-clock time in seconds (the reactor's seconds()).
        self.now = now
        #: a gamed.store.ranks.RankIndex: ranks and player counts read from it (the
        #: pages' store) instead of counted in SQL
        self.ranks = ranks

    def _now_iso(self) -> str:
        from gamed.store.accounts import iso

        return iso(self.now()) if self.now else iso(0)

    def get_rating(self, account_id: int, game: str) -> defer.Deferred:
        return self.database.run_read("get_rating", read_rating, account_id, game)

    def ratings_of(self, account_id: int) -> defer.Deferred:
        """Every game's Rating of one account, by game name."""
        return self.database.run_read(
            "ratings_of", lambda cur: [_rating(r) for r in cur.execute(
                _RATING + " WHERE account_id = ? ORDER BY game", (account_id,)).fetchall()])

    def get_ratings(self, account_ids: Iterable[int], game: str) -> defer.Deferred:
        ids = list(account_ids)
        return self.database.run_read(
            "get_ratings", lambda cur: {i: read_rating(cur, i, game) for i in ids})

    def record_match(self, result: MatchResult) -> defer.Deferred:
        if result.ranked and len(result.players) != 2:
            return defer.fail(ValueError("a ranked match needs exactly two players"))
        return self.database.run_interaction("record_match", record_match_txn, result,
                                             self._now_iso())

    def leaderboard(self, game: str, limit: int = 10, offset: int = 0) -> defer.Deferred:
        if self.ranks is None:
            return self.database.run_read("leaderboard", leaderboard_txn, game, limit,
                                          offset)
        return self.database.run_read("leaderboard", ranked_leaderboard_txn, self.ranks,
                                      game, limit, offset)

    def rank(self, account_id: int, game: str) -> defer.Deferred:
        if self.ranks is None:
            return self.database.run_interaction("rank", rank_txn, account_id, game)

        def rank(cur: Cursor):
            row = cur.execute("SELECT rating FROM ratings WHERE account_id = ? AND game = ?",
                              (account_id, game)).fetchone()
            if row is None:
                return None
            self.ranks.refresh(cur)
            return self.ranks.rank(game, row[0], account_id)

        return self.database.run_read("rank", rank)

    def players_count(self, game: str) -> defer.Deferred:
        if self.ranks is not None:
            def count(cur: Cursor):
                self.ranks.refresh(cur)
                return self.ranks.count(game)

            return self.database.run_read("players_count", count)
        return self.database.run_read(
            "players_count", lambda cur: cur.scalar(
                "SELECT COUNT(*) FROM ratings WHERE game = ?", (game,)))

    def history(self, account_id: int, game: Optional[str] = None, limit: int = 20,
                before_id: Optional[int] = None) -> defer.Deferred:
        return self.database.run_interaction("match_history", history_txn, account_id, game,
                                             limit, before_id)

    def player_page(self, account_id: int, limit: int = 20, before_id: Optional[int] = None,
                    points: int = 200) -> defer.Deferred:
        """What a player page shows, in one transaction (player_page_txn)."""
        return self.database.run_read("player_page", player_page_txn, account_id, limit,
                                      before_id, points, self.ranks)

    def matches(self, game: Optional[str] = None, player_id: Optional[int] = None,
                limit: int = 20, before_id: Optional[int] = None) -> defer.Deferred:
        """Recent matches (newest first) with their players, for the API and gamectl."""
        return self.database.run_read("list_matches", matches_txn, game, player_id,
                                      limit, before_id)

    def match(self, match_id: int) -> defer.Deferred:
        """One finished match as `matches` lists it, or None."""
        def match(cur: Cursor):
            rows = cur.execute(_MATCH + " WHERE m.id = ?", (match_id,)).fetchall()
            return _match_dicts(cur, rows)[0] if rows else None

        return self.database.run_read("get_match", match)

    def rating_points(self, account_id: int, limit: int = 200) -> defer.Deferred:
        """The account's ratings after its last `limit` ranked matches, oldest first:
        [(match_id, game, ended_at, rating_after)] (match_players_account index)."""
        return self.database.run_interaction("rating_points", rating_points_txn, account_id,
                                             limit)

    def front_page(self, games, top: int = 5, recent: int = 10) -> defer.Deferred:
        """In one transaction: the top of each game's leaderboard, how many players each
        has, and the newest matches -> ({game: [LeaderboardRow]}, {game: count}, [match])."""
        def front(cur: Cursor):
            boards = {game: leaderboard_txn(cur, game, top, 0) for game in games}
            if self.ranks is not None:
                self.ranks.refresh(cur)
                counts = {game: self.ranks.count(game) for game in games}
            else:
                counts = {game: cur.scalar("SELECT COUNT(*) FROM ratings WHERE game = ?",
                                           (game,)) for game in games}
            return boards, counts, matches_txn(cur, None, None, recent, None)

        return self.database.run_read("front_page", front)
