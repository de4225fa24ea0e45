"""The uttt service: sessions, random matching and invites, moves, results, friends.

`UtttGame` is the one place that knows who is online, which matches are open (all of them
are kept in memory, loaded from the database at start) and who waits for a random
opponent. `UtttConnection` is the per-connection handler: it decodes requests
(`messages.parse_request`), dispatches them by type and answers in the protocol's own
shapes; the same handler serves WebSocket and TCP JSON lines. Every match change goes
through `GroupCommit` to the database and is announced only once it is committed.
"""

from __future__ import annotations

import datetime
from collections import deque
from typing import Optional

import attrs
from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import failure

from gamed.core.accounts import AuthError
from gamed.core.channel import ConnectionHandler, encode
from gamed.core.live import GameMonitor, RunningMatch, UnknownMatch
from gamed.store.accounts import iso
from gamed.store.ratings import MatchPlayer, MatchResult
from gamed.store.uttt import GAME, MatchClosed, MoveMade, NewMatch, UtttStore
from gamed.uttt import matchmaking, rules
from gamed.uttt.commit import GroupCommit
from gamed.uttt.messages import (MAX_PASSWORD_LENGTH, SESSION_REQUESTS, BadRequest,
                                 EloUpdate, FriendsUpdate, Invite, LastMove, LoginResponse,
                                 MatchState, MatchUpdate, ReconnectResponse, Response, failure,
                                 frame, parse_request, player_name)

log = Logger(namespace="gamed.uttt")

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


class UtttGame(service.Service):
    """The game's state and every operation on it; handlers call into it."""

    name = "uttt-game"

    def __init__(self, core, store: UtttStore, clock=None, tuning: Optional[Tuning] = None):
        self.core = core
        self.settings = core.config.uttt
        self.tuning = tuning = tuning or Tuning(
            match_window=self.settings.match_window,
            match_window_widen=self.settings.match_window_widen,
            match_window_max=self.settings.match_window_max,
            pair_interval=self.settings.pair_interval,
            max_queued_requests=self.settings.max_queued_requests)
        self.store = store
        self.clock = clock if clock is not None else core.reactor
        self.accounts = core.accounts
        self.ratings = core.ratings
        self.friends = core.friends
        self.presence = core.presence
        # guest accounts changing hands right now, shared with the accounts service so a
        # registration and a temporary claim never take the same guest at once
        self.claiming: set = self.accounts.changing
        # a temporary player with open matches keeps its name (no registration takes it)
        self.accounts.guest_holds.append(
            lambda account_id: bool(self.open_count(account_id)) or account_id in self.claiming)
        self.taken: dict = {}  # account id -> its waiting entry while its match is written
        self.window = matchmaking.Window(tuning.match_window, tuning.match_window_widen,
                                         tuning.match_window_max)
        self.connections: dict = {}  # account id -> set of UtttConnection
        self.players: dict = {}  # account id -> Player, while online
        self.matches: dict = {}  # match id -> LiveMatch
        self.open_of: dict = {}  # account id -> set of match ids
        self.reserved: dict = {}  # account id -> matches being created
        self.waiting: dict = {}  # account id -> (Seeker, UtttConnection)
        metrics = core.metrics
        self.moves_counter = metrics.counter("uttt_moves", "uttt moves committed")
        self.results_counter = metrics.counter("uttt_results", "uttt matches ended",
                                               ["reason"])
        self.open_gauge = metrics.gauge("uttt_open_matches", "uttt matches open")
        self.batch_size = metrics.histogram(
            "uttt_commit_batch", "uttt writes per committed batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.writer = GroupCommit(store.write_batch, on_batch=self._batch_done,
                                  max_in_flight=store.write_concurrency,
                                  exclusive=lambda op: isinstance(op, MatchClosed))
        self.loaded = False
        self._load_waiters: list = []
        self._pair_loop: Optional[task.LoopingCall] = None
        self.presence.watch(self._presence_changed)

    # -- service -------------------------------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self._load()
        self._pair_loop = task.LoopingCall(self.pair_waiting)
        self._pair_loop.clock = self.clock
        self._pair_loop.start(self.tuning.pair_interval, now=False)

    def _load(self) -> None:
        def loaded(rows):
            for row in rows:
                self._adopt(row)
            self.loaded = True
            log.info("uttt: {count} open matches loaded", count=len(rows))
            waiters, self._load_waiters = self._load_waiters, []
            for waiter in waiters:
                waiter.callback(None)

        def failed(reason):
            log.failure("uttt: loading open matches failed; retrying in 5 s", reason)
            if self.running:
                self.clock.callLater(5.0, self._load)

        self.store.open_matches().addCallbacks(loaded, failed)

    def when_loaded(self) -> defer.Deferred:
        if self.loaded:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._load_waiters.append(waiter)
        return waiter

    def stopService(self):
        service.Service.stopService(self)
        if self._pair_loop is not None and self._pair_loop.running:
            self._pair_loop.stop()
        for match in self.matches.values():
            self._cancel_deadline(match)
        return self.writer.drained()

    def _adopt(self, row) -> LiveMatch:
        try:
            board = rules.decode_board(row.board, row.last_move)
        except ValueError:
            log.error("uttt: match {id} has an unreadable board; skipped", id=row.id)
            return None
        match = LiveMatch(row.id, Player(row.player_a, row.name_a, row.guest_a),
                          Player(row.player_b, row.name_b, row.guest_b), row.ranked, board,
                          row.created_at, row.last_move_at)
        self._register(match)
        return match

    def _register(self, match: LiveMatch) -> None:
        self.matches[match.id] = match
        for player in match.players():
            self.open_of.setdefault(player.id, set()).add(match.id)
        self.open_gauge.set(len(self.matches))
        self._schedule_deadline(match)

    def _unregister(self, match: LiveMatch) -> None:
        self.matches.pop(match.id, None)
        for player in match.players():
            ids = self.open_of.get(player.id)
            if ids is not None:
                ids.discard(match.id)
                if not ids:
                    del self.open_of[player.id]
        self._cancel_deadline(match)
        self.open_gauge.set(len(self.matches))

    def _batch_done(self, size: int) -> None:
        self.batch_size.observe(size)

    # -- sessions ------------------------------------------------------------------------------

    def attach(self, connection: "UtttConnection", account) -> Player:
        """Count the connection as the account's; returns the account's shared Player."""
        player = self.players.get(account.id)
        if player is None:
            player = self.players[account.id] = Player(account.id, account.name_key,
                                                       account.is_guest)
        self.connections.setdefault(account.id, set()).add(connection)
        self.presence.arrived(account.id, GAME)
        return player

    def detach(self, connection: "UtttConnection", player: Player) -> None:
        conns = self.connections.get(player.id)
        if conns is None or connection not in conns:
            return
        conns.discard(connection)
        entry = self.waiting.get(player.id)
        if entry is not None and (entry[1] is connection or not conns):
            del self.waiting[player.id]
        if not conns:
            del self.connections[player.id]
            self.players.pop(player.id, None)
        self.presence.left(player.id, GAME)

    def online(self, account_id: int) -> bool:
        return account_id in self.connections

    # -- what the web pages and the operator console see -----------------------------------

    def monitor(self) -> GameMonitor:
        return GameMonitor(count=lambda: len(self.matches), running=self.running_matches,
                           end_match=self.cancel_match, disconnect=self.disconnect)

    def running_matches(self) -> list:
        return [RunningMatch(GAME, match.key, (match.player_a.name, match.player_b.name),
                             match.created_at)
                for match in sorted(self.matches.values(), key=lambda m: -m.id)]

    def cancel_match(self, match_key: str) -> defer.Deferred:
        """The operator ends an open match: cancelled, unrated, both players told."""
        match = self.matches.get(int(match_key)) if match_key.isdigit() else None
        if match is None:
            raise UnknownMatch("no open uttt match %s" % match_key)
        if match.pending:
            raise UnknownMatch("uttt match %s is being saved; try again" % match_key)
        match.pending = True
        self._cancel_deadline(match)
        return self._close(match, rules.EMPTY, False, rules.CANCELLED)

    def disconnect(self, account_id: int) -> int:
        connections = list(self.connections.get(account_id, ()))
        for connection in connections:
            connection.channel.close("disconnected by the operator")
        return len(connections)

    def send_to(self, account_id: int, text: str) -> None:
        for connection in self.connections.get(account_id, ()):
            connection.channel.send_text(text)

    def open_count(self, account_id: int) -> int:
        return len(self.open_of.get(account_id, ())) + self.reserved.get(account_id, 0)

    def matches_of(self, account_id: int) -> list:
        return [self.matches[i] for i in sorted(self.open_of.get(account_id, ()))]

    def find_match(self, match_key: str, account_id: int) -> Optional[LiveMatch]:
        """The open match with this id if the account plays in it (else None: other
        players' matches look exactly like missing ones)."""
        try:
            match = self.matches.get(int(match_key))
        except ValueError:
            return None
        if match is None or not match.mark_of(account_id):
            return None
        return match

    # -- updates -------------------------------------------------------------------------------

    def update_text(self, match: LiveMatch) -> str:
        state = state_view(match.board, match.player_a.name, match.player_b.name, match.result)
        deadline = match.last_move_at + self.settings.move_timeout
        return encode(frame(MatchUpdate(match.key, revoke_time(deadline), match.ranked, state)))

    def announce(self, match: LiveMatch) -> None:
        text = self.update_text(match)
        for player in match.players():
            self.send_to(player.id, text)

    def stored_update_text(self, row) -> str:
        """The final update of a match finished while the player was away."""
        board = rules.decode_board(row.board, row.last_move)
        state = state_view(board, row.name_a, row.name_b, (row.winner, row.is_draw, row.reason))
        deadline = row.last_move_at + self.settings.move_timeout
        return encode(frame(MatchUpdate(str(row.id), revoke_time(deadline), row.ranked, state)))

    @defer.inlineCallbacks
    def elo_update(self, player: Player):
        summary = yield self.store.elo_summary(None if player.guest else player.id)
        if summary.rating is not None:
            player.rating = summary.rating
        return frame(EloUpdate(summary.rating, summary.rank, [n for n, _ in summary.top],
                               [r for _, r in summary.top]))

    @defer.inlineCallbacks
    def friends_update(self, account_id: int):
        friends = yield self.friends.friends_of(account_id)
        ratings = yield self.ratings.get_ratings([f.id for f in friends], GAME)
        return frame(FriendsUpdate([f.name_key for f in friends],
                                   [ratings[f.id].rating for f in friends],
                                   [self.online(f.id) for f in friends]))

    @defer.inlineCallbacks
    def push_friends_update(self, account_id: int):
        if not self.online(account_id):
            return
        message = yield self.friends_update(account_id)
        self.send_to(account_id, encode(message))

    def _presence_changed(self, account_id: int, game: str, online: bool) -> None:
        if game == GAME:
            self._friends_changed(account_id)

    def _friends_changed(self, account_id: int) -> None:
        """Send fresh friends_updates to the online friends of `account_id`."""
        d = self._tell_friends(account_id)
        d.addErrback(lambda f: log.failure("uttt: telling friends of {id} failed", f,
                                           id=account_id))

    @defer.inlineCallbacks
    def _tell_friends(self, account_id: int):
        player = self.players.get(account_id)
        if player is not None and player.guest:
            return
        friends = yield self.friends.friends_of(account_id)
        for friend in friends:
            if self.online(friend.id):
                yield self.push_friends_update(friend.id)

    # -- starting matches --------------------------------------------------------------------

    def untouched_match_between(self, a: int, b: int) -> Optional[LiveMatch]:
        for match in self.matches_of(a):
            if match.board.moves == 0 and match.mark_of(b) and not match.pending:
                return match
        return None

    def create_match(self, player_a: Player, player_b: Player, invite: bool) -> defer.Deferred:
        """Store a new match (player_a starts) and tell both; fires with the LiveMatch."""
        now = self.clock.seconds()
        ranked = not player_a.guest and not player_b.guest
        for player in (player_a, player_b):
            self.reserved[player.id] = self.reserved.get(player.id, 0) + 1

        def release(result):
            for player in (player_a, player_b):
                left = self.reserved.get(player.id, 1) - 1
                if left:
                    self.reserved[player.id] = left
                else:
                    self.reserved.pop(player.id, None)
            return result

        def created(match_id):
            match = LiveMatch(match_id, player_a, player_b, ranked, rules.new_board(), now, now)
            self._register(match)
            log.debug("uttt: match {id} started: {a} vs {b} ({kind})", id=match_id,
                      a=player_a.name, b=player_b.name, kind="ranked" if ranked else "unranked")
            self.announce(match)
            if invite:
                self.send_to(player_b.id, encode(frame(Invite(player_a.name, match.key))))
            return match

        d = self.writer.submit(NewMatch(player_a.id, player_b.id, ranked, now))
        d.addBoth(release)
        d.addCallback(created)
        return d

    def seek(self, connection: "UtttConnection", player: Player) -> Optional[Player]:
        """Queue for a random opponent; returns the waiting player to start with, if any."""
        now = self.clock.seconds()
        seeker = matchmaking.Seeker(player.id, player.rating, now)
        candidates = [entry[0] for key, entry in self.waiting.items()
                      if key != player.id and self.online(key)
                      and self.open_count(key) < self.settings.max_open_matches]
        opponent = matchmaking.best_opponent(seeker, candidates, now, self.window)
        if opponent is None:
            self.waiting[player.id] = (seeker, connection)
            return None
        self.taken[opponent.key] = self.waiting.pop(opponent.key)
        return self.taken[opponent.key][1].player

    def matched(self, player_id: int, started: bool) -> None:
        """A waiting player taken for a match: it started, or its write failed and the
        player waits again (in its old place) if still here."""
        entry = self.taken.pop(player_id, None)
        if entry is not None and not started and self.online(player_id):
            self.waiting.setdefault(player_id, entry)

    def pair_waiting(self) -> None:
        """Pair waiting players whose windows have widened enough (runs periodically)."""
        if len(self.waiting) < 2:
            return
        now = self.clock.seconds()
        eligible = [entry[0] for key, entry in self.waiting.items()
                    if self.online(key) and self.open_count(key) < self.settings.max_open_matches]
        for first, second in matchmaking.pairs(eligible, now, self.window):
            keys = (first.key, second.key)
            for key in keys:
                self.taken[key] = self.waiting.pop(key)
            d = self.create_match(self.taken[first.key][1].player,
                                  self.taken[second.key][1].player, invite=False)

            def done(result, keys=keys):
                started = not isinstance(result, failure.Failure)
                for key in keys:
                    self.matched(key, started)
                if not started:
                    log.failure("uttt: starting a queued match failed; both wait again",
                                result)

            d.addBoth(done)

    # -- moves and endings -------------------------------------------------------------------

    def play(self, match: LiveMatch, player: Player, move: rules.Move) -> defer.Deferred:
        """Apply a legal move: commit, then announce. IllegalMove is raised synchronously."""
        if match.pending:
            raise rules.IllegalMove("busy", "the previous change of this match is still "
                                            "being saved; try again")
        now = self.clock.seconds()
        if now >= match.last_move_at + self.settings.move_timeout:
            # the deadline passed and its timer has not run yet: it decides, not this move
            self._cancel_deadline(match)
            self._deadline_passed(match.id)
            raise rules.IllegalMove("game_over", "the time to move ran out")
        mark = match.mark_of(player.id)
        board = rules.play(match.board, mark, move)
        op = MoveMade(match.id, match.board.moves, mark, move.sub_x, move.sub_y, move.x,
                      move.y, board.encode_cells(), move.encode(), now)
        match.pending = True
        if board.over:
            winner = board.winner
            return self._close(match, winner, board.draw,
                               rules.WON if winner else rules.DRAW, final=(op, board))

        def committed(_):
            match.pending = False
            match.board = board
            match.last_move_at = now
            self.moves_counter.inc()
            self._schedule_deadline(match)
            self.announce(match)
            return match

        def failed(reason):
            match.pending = False
            return reason

        return self.writer.submit(op).addCallbacks(committed, failed)

    def leave(self, match: LiveMatch, player: Player) -> defer.Deferred:
        """`end_match`: the other player wins; rated only once both have moved."""
        if match.pending:
            raise rules.IllegalMove("busy", "the previous change of this match is still "
                                            "being saved; try again")
        winner, reason = rules.abandon_result(match.board, match.mark_of(player.id))
        match.pending = True
        return self._close(match, winner, False, reason)

    def _close(self, match: LiveMatch, winner: int, draw: bool, reason: str,
               final: Optional[tuple] = None) -> defer.Deferred:
        now = self.clock.seconds()
        board = final[1] if final else match.board
        result = self._result(match, board, winner, draw, reason, now)
        seen = tuple(self.online(p.id) for p in match.players())
        op = MatchClosed(match.id, winner, draw, reason, now, result,
                         final[0] if final else None, seen)

        def committed(recorded):
            match.pending = False
            match.board = board
            if final:
                match.last_move_at = now
                self.moves_counter.inc()
            match.result = (winner, draw, reason)
            self._unregister(match)
            for player, was_online in zip(match.players(), seen):
                if was_online and not self.online(player.id):
                    # gone while the result was written: it will not see the announcement
                    self.store.mark_unseen(match.id, player.id).addErrback(
                        lambda f: log.failure("uttt: marking a result unseen failed", f))
            self.results_counter.labels(reason).inc()
            log.info("uttt: match {id} ended ({reason}), winner {winner}", id=match.id,
                     reason=reason, winner=match.player(winner).name if winner else None)
            self.announce(match)
            if recorded is not None and result.ranked:
                for player in match.players():
                    change = recorded.changes.get(player.id)
                    if change is not None:
                        player.rating = change.after
                        if player.id in self.players:
                            self.players[player.id].rating = change.after
                    self._push_elo(self.players.get(player.id, player))
                    self._friends_changed(player.id)  # their lists show this rating
            return match

        def failed(reason_):
            match.pending = False
            return reason_

        return self.writer.submit(op).addCallbacks(committed, failed)

    def _result(self, match: LiveMatch, board: rules.Board, winner: int, draw: bool,
                reason: str, now: float) -> MatchResult:
        def outcome(mark):
            if draw or not winner:
                return "draw"
            return "win" if winner == mark else "loss"

        players = [MatchPlayer(p.id, outcome(mark),
                               {"win": 1.0, "loss": 0.0, "draw": 0.5}[outcome(mark)])
                   for mark, p in ((rules.MARK_A, match.player_a), (rules.MARK_B, match.player_b))]
        return MatchResult(
            game=GAME, players=players, reason=reason,
            ranked=match.ranked and reason != rules.CANCELLED,
            k_factor=self.settings.k_factor, started_at=iso(match.created_at),
            ended_at=iso(now), details={"uttt_match": match.id, "moves": board.moves})

    def _push_elo(self, player: Player) -> None:
        if not self.online(player.id):
            return
        d = self.elo_update(player)
        d.addCallback(lambda message: self.send_to(player.id, encode(message)))
        d.addErrback(lambda f: log.failure("uttt: elo_update for {name} failed", f,
                                           name=player.name))

    # -- the move deadline (survives restarts: it is derived from last_move_at) -----------

    def _schedule_deadline(self, match: LiveMatch) -> None:
        self._cancel_deadline(match)
        due = match.last_move_at + self.settings.move_timeout - self.clock.seconds()
        match.deadline_call = self.clock.callLater(max(0.0, due), self._deadline_passed,
                                                   match.id)

    def _cancel_deadline(self, match: LiveMatch) -> None:
        call, match.deadline_call = match.deadline_call, None
        if call is not None and call.active():
            call.cancel()

    def _deadline_passed(self, match_id: int) -> None:
        match = self.matches.get(match_id)
        if match is None:
            return
        match.deadline_call = None
        if match.pending:  # a move is being saved: look again shortly
            match.deadline_call = self.clock.callLater(1.0, self._deadline_passed, match_id)
            return
        if self.clock.seconds() < match.last_move_at + self.settings.move_timeout:
            self._schedule_deadline(match)
            return
        winner, reason = rules.timeout_result(match.board)
        match.pending = True
        d = self._close(match, winner, False, reason)
        d.addErrback(self._deadline_failed, match)

    def _deadline_failed(self, reason, match: LiveMatch) -> None:
        log.failure("uttt: ending match {id} on timeout failed; retrying in 60 s", reason,
                    id=match.id)
        if match.id in self.matches:
            match.deadline_call = self.clock.callLater(60.0, self._deadline_passed, match.id)


class UtttConnection(ConnectionHandler):
    """One client connection: requests are served one at a time, in order of arrival."""

    def __init__(self, game: UtttGame):
        self.game = game
        self.player: Optional[Player] = None
        self.session: Optional[str] = None
        self.queue: deque = deque()
        self.busy = False
        self.gone = False
        self._idle: list = []

    # -- the transport side ----------------------------------------------------------------

    def connection_lost(self, reason: str) -> None:
        self.gone = True
        self.queue.clear()
        if self.player is not None:
            self.game.detach(self, self.player)

    def error_message(self, code: str, detail: str, request) -> dict:
        return failure(None, code, detail)

    def send(self, message: dict) -> None:
        self.channel.send(message)

    def message_received(self, message: dict) -> None:
        if len(self.queue) >= self.game.tuning.max_queued_requests:
            self.send(failure(message.get("type") if isinstance(message.get("type"), str)
                              else None, "busy", "too many requests waiting; slow down"))
            return
        self.queue.append(message)
        if not self.busy:
            self._pump()

    def _pump(self) -> None:
        while self.queue and not self.gone:
            message = self.queue.popleft()
            pending = self._handle(message)
            if pending is not None and not pending.called:
                self.busy = True
                pending.addBoth(self._resume)
                return
        if not self.queue:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)

    def _resume(self, _) -> None:
        self.busy = False
        self._pump()

    def idle(self) -> defer.Deferred:
        """Fires when every received request has been served (for tests)."""
        if not self.busy and not self.queue:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._idle.append(waiter)
        return waiter

    def _handle(self, message: dict) -> Optional[defer.Deferred]:
        if not self.game.loaded:
            return self.game.when_loaded().addCallback(lambda _: self._handle(message))
        try:
            kind, request = parse_request(message)
        except BadRequest as exc:
            self._refuse(exc.request_type, exc.code, exc.message)
            return None
        if self.player is None and kind not in SESSION_REQUESTS:
            self._refuse(kind, "not_logged_in",
                         "log in first (login, temp_session or reconnect)")
            return None
        try:
            result = self.DISPATCH[kind](self, request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reply
            self._failed(exc, kind)
            return None
        if isinstance(result, defer.Deferred):
            return result.addErrback(lambda f: self._failed(f.value, kind, f))
        return None

    def _refuse(self, kind: Optional[str], code: str, msg: str, **extra) -> None:
        self.game.core.metrics.service(GAME).error(code)
        self.send(failure(kind, code, msg, **extra))

    def _failed(self, exc: BaseException, kind: str, fail=None) -> None:
        if isinstance(exc, BadRequest):
            self._refuse(kind, exc.code, exc.message)
        elif isinstance(exc, AuthError):
            self._refuse(kind, exc.code, exc.message)
        elif isinstance(exc, rules.IllegalMove):
            self._refuse(kind, exc.code, exc.message)
        else:
            if fail is not None:
                log.failure("uttt: {kind} from {peer} failed", fail, kind=kind,
                            peer=getattr(self.channel, "peer", "?"))
            else:
                log.error("uttt: {kind} failed: {error!r}", kind=kind, error=exc)
            self._refuse(kind, "internal_error", "the server could not do that; try again")

    # -- sessions ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def on_login(self, request):
        name = player_name(request.name)
        if request.pw is None or request.pw == "":
            yield self._temporary(name)
            return
        if len(request.pw) > MAX_PASSWORD_LENGTH:
            raise BadRequest("invalid_password",
                             "passwords are at most %d characters" % MAX_PASSWORD_LENGTH)
        account, created = yield self.game.accounts.login_or_register(
            name, request.pw, self.channel.peer)
        token = yield self.game.accounts.open_session(account)
        msg = ("registered and logged in as %s" % name if created
               else "logged in as %s" % name)
        yield self._start_session(account, token, LoginResponse(
            True, msg, token, not account.is_guest, account.name_key))

    @defer.inlineCallbacks
    def on_temp_session(self, request):
        name = None if request.name in (None, "") else player_name(request.name)
        yield self._temporary(name)

    @defer.inlineCallbacks
    def _temporary(self, name: Optional[str]):
        game = self.game
        try:
            account = yield game.accounts.guest(name)
        except AuthError as exc:
            if exc.code != "name_taken":
                raise
            # a temporary name is free again once its last holder is gone (from every
            # game: blockattack's players are guests of the same account table)
            account = yield game.accounts.find_account(name)
            if (account is None or not account.is_guest or game.online(account.id)
                    or game.presence.is_online(account.id) or game.open_count(account.id)
                    or account.id in game.claiming):
                raise AuthError("name_taken", "the name %s is not available" % name) from None
            # the name changes hands: the previous holder's sessions must not reach it;
            # meanwhile nobody else may claim it (the checks above would pass for them too)
            game.claiming.add(account.id)
            try:
                yield game.accounts.revoke_sessions(account.id)
                token = yield game.accounts.open_session(account)
                yield self._start_session(account, token, LoginResponse(
                    True, "logged in as temporary user %s" % account.name_key, token, False,
                    account.name_key))
            finally:
                game.claiming.discard(account.id)
            return
        token = yield game.accounts.open_session(account)
        yield self._start_session(account, token, LoginResponse(
            True, "logged in as temporary user %s" % account.name_key, token, False,
            account.name_key))

    @defer.inlineCallbacks
    def on_reconnect(self, request):
        account = yield self.game.accounts.resume_session(request.id)
        if account is None:
            raise AuthError("session_not_found", "session not available (unknown or expired)")
        yield self._start_session(account, request.id, ReconnectResponse(
            True, "welcome back, %s" % account.name_key, request.id, account.name_key,
            not account.is_guest), "reconnect_response")

    @defer.inlineCallbacks
    def _start_session(self, account, token: str, response, response_type="login_response"):
        game = self.game
        if self.player is not None:
            game.detach(self, self.player)
        if self.gone:
            return
        self.session = token
        self.player = game.attach(self, account)
        self.send(frame(response, response_type))
        log.info("uttt: {name} online from {peer}", name=self.player.name,
                 peer=self.channel.peer)
        elo = yield game.elo_update(self.player)
        self.send(elo)
        if self.player.guest:  # the client reads both arrays: temporary users get empty ones
            self.send(frame(FriendsUpdate([], [], [])))
        else:
            friends = yield game.friends_update(self.player.id)
            self.send(friends)
        for match in game.matches_of(self.player.id):
            self.channel.send_text(game.update_text(match))
        finished = yield game.store.take_unseen_results(self.player.id,
                                                         game.tuning.unseen_results)
        for row in finished:
            self.channel.send_text(game.stored_update_text(row))

    # -- matches -------------------------------------------------------------------------------

    def _check_room(self, player: Player, whose: str) -> None:
        limit = self.game.settings.max_open_matches
        if self.game.open_count(player.id) >= limit:
            raise BadRequest("too_many_matches", "%s already %s %d open matches (the limit)"
                             % (whose, "have" if whose == "you" else "has", limit))

    @defer.inlineCallbacks
    def on_match_request(self, request):
        game, me = self.game, self.player
        if request.player is None or request.player == "":
            self._check_room(me, "you")
            if me.id in game.waiting:
                raise BadRequest("already_waiting", "you are already waiting for an opponent")
            opponent = game.seek(self, me)
            if opponent is None:
                self.send(frame(Response(True, "waiting for an opponent"),
                                "match_request_response"))
                return
            try:
                yield game.create_match(opponent, me, invite=False)
            except Exception:
                game.matched(opponent.id, started=False)  # the opponent waits again
                raise
            game.matched(opponent.id, started=True)
            self.send(frame(Response(True, "matched with %s" % opponent.name),
                            "match_request_response"))
            return
        name = player_name(request.player)
        if name == me.name:
            raise BadRequest("invalid_opponent", "you cannot play against yourself")
        account = yield game.accounts.find_account(name)
        if account is None or account.banned:
            raise BadRequest("unknown_player", "user %s not found" % name)
        existing = game.untouched_match_between(me.id, account.id)
        if existing is not None:  # an invite answered with an invite: one match, not two
            self.send(frame(Response(True, "your match against %s has started" % name),
                            "match_request_response"))
            self.channel.send_text(game.update_text(existing))
            return
        self._check_room(me, "you")
        opponent = Player(account.id, account.name_key, account.is_guest)
        self._check_room(opponent, name)
        yield game.create_match(me, opponent, invite=True)
        self.send(frame(Response(True, "started a match against %s" % name),
                        "match_request_response"))

    def on_move(self, request):
        match = self.game.find_match(request.id, self.player.id)
        if match is None:
            raise BadRequest("no_such_match", "you have no open match %s" % request.id[:64])
        move = rules.Move(request.sub_x, request.sub_y, request.x, request.y)
        try:
            return self.game.play(match, self.player, move)
        except rules.IllegalMove as exc:
            self._refuse("move", exc.code, exc.message, id=match.key)
            return None

    def on_end_match(self, request):
        match = self.game.find_match(request.id, self.player.id)
        if match is None:
            raise BadRequest("no_such_match", "you have no open match %s" % request.id[:64])
        d = self.game.leave(match, self.player)
        d.addCallback(lambda _: self.send(frame(Response(True, "match %s ended" % match.key),
                                                "end_match_response")))
        return d

    def on_match_states_request(self, request):
        game = self.game
        for match in game.matches_of(self.player.id):
            self.channel.send_text(game.update_text(match))

    # -- friends -------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _friend_target(self, user: str):
        if self.player.guest:
            raise BadRequest("not_registered", "temporary users cannot have friends")
        name = player_name(user)
        if name == self.player.name:
            raise BadRequest("invalid_user", "you cannot befriend yourself")
        account = yield self.game.accounts.find_account(name)
        if account is None or account.is_guest:
            raise BadRequest("unknown_user", "user %s not found" % name)
        return account

    @defer.inlineCallbacks
    def on_friend_request(self, request):
        account = yield self._friend_target(request.user)
        added = yield self.game.friends.add(self.player.id, account.id)
        msg = ("%s is now your friend" % account.name_key if added
               else "%s is already your friend" % account.name_key)
        self.send(frame(Response(True, msg), "friend_request_response"))
        yield self.game.push_friends_update(self.player.id)
        yield self.game.push_friends_update(account.id)

    @defer.inlineCallbacks
    def on_unfriend_request(self, request):
        account = yield self._friend_target(request.user)
        removed = yield self.game.friends.remove(self.player.id, account.id)
        if not removed:
            raise BadRequest("not_a_friend", "%s is not your friend" % account.name_key)
        self.send(frame(Response(True, "%s is no longer your friend" % account.name_key),
                        "unfriend_request_response"))
        yield self.game.push_friends_update(self.player.id)
        yield self.game.push_friends_update(account.id)

    DISPATCH = {
        "login": on_login,
        "temp_session": on_temp_session,
        "reconnect": on_reconnect,
        "match_request": on_match_request,
        "move": on_move,
        "end_match": on_end_match,
        "match_states_request": on_match_states_request,
        "friend_request": on_friend_request,
        "unfriend_request": on_unfriend_request,
    }


def make_service(core, clock=None, tuning: Optional[Tuning] = None) -> service.IService:
    """The uttt game and its listeners (WebSocket and TCP JSON lines)."""
    settings = core.config.uttt
    top = service.MultiService()
    top.setName("uttt")
    game = UtttGame(core, UtttStore(core.database), clock, tuning)
    game.setServiceParent(top)
    top.game = game
    core.live.register(GAME, game.monitor())

    def handler():
        return UtttConnection(game)

    for endpoint, websocket in ((settings.websocket, True), (settings.listen, False)):
        listener = core.stream_listeners(GAME, endpoint, handler, settings, websocket=websocket)
        if listener is not None:
            listener.setServiceParent(top)
    return top
