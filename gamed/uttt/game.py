"""The uttt game: who is online, the open matches (all kept in memory, loaded from the
database at start), random matching and invites, moves, results, friends.

`UtttGame` is the one place that changes this state; connection handlers
(`gamed.uttt.connection`) call into it. Every match change goes through `GroupCommit` to
the database and is announced only once it is committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import failure

from gamed.core.channel import encode
from gamed.core.live import GameMonitor, RunningMatch, UnknownMatch
from gamed.core.logs import log_failure
from gamed.store.accounts import iso
from gamed.store.ratings import MatchPlayer, MatchResult
from gamed.store.uttt import GAME, MatchClosed, MoveMade, NewMatch, StaleMatch, UtttStore
from gamed.uttt import matchmaking, rules
from gamed.uttt.commit import GroupCommit
from gamed.uttt.live import LiveMatch, Player, Tuning, revoke_time, state_view
from gamed.uttt.messages import EloUpdate, FriendsUpdate, Invite, MatchUpdate, frame

if TYPE_CHECKING:
    from gamed.uttt.connection import UtttConnection

log = Logger(namespace="gamed.uttt")


class UtttGame(service.Service):
    """The game's state and every operation on it; handlers call into it."""

    name = "uttt-game"

    def __init__(self, core, store: UtttStore, clock=None, tuning: Optional[Tuning] = None,
                 settings=None):
        self.core = core
        self.settings = settings if settings is not None else core.config.uttt
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
        # the other nodes of the cluster (none on one node: publishing reaches nobody)
        cluster = core.cluster
        self.clustered = cluster.clustered
        self.bus = cluster.bus
        self.queue = cluster.queue
        # guest accounts changing hands right now, shared with the accounts service so a
        # registration and a temporary claim never take the same guest at once
        self.claiming: set = self.accounts.changing
        # a temporary player with open matches keeps its name (no registration takes it)
        self.accounts.guest_holds.append(
            lambda account_id: bool(self.open_count(account_id)) or account_id in self.claiming)
        # account id -> (queue entry, connection here or None) while its match is written
        self.taken: dict = {}
        self.window = matchmaking.Window(tuning.match_window, tuning.match_window_widen,
                                         tuning.match_window_max)
        self.connections: dict = {}  # account id -> set of UtttConnection
        self.players: dict = {}  # account id -> Player, while online
        self.matches: dict = {}  # match id -> LiveMatch
        self.open_of: dict = {}  # account id -> set of match ids
        self.reserved: dict = {}  # account id -> matches being created
        self.waiting: dict = {}  # account id -> the connection here that queued it
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
        self.bus.subscribe("uttt.send", self._remote_send)
        self.bus.subscribe("uttt.match", self._remote_match)
        self.bus.subscribe("uttt.friends", lambda m, sender: self._friends_changed(m["a"]))
        self.queue.on_taken(GAME, lambda key: self.waiting.pop(int(key), None))
        cluster.on_rejoined(self.catch_up)

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
            log_failure(log, "uttt: loading open matches failed; retrying in 5 s", reason)
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
        queued = self.waiting.get(player.id)
        if queued is not None and (queued is connection or not conns):
            del self.waiting[player.id]
            self.queue.leave(GAME, str(player.id)).addErrback(self._queue_failed)
        if not conns:
            del self.connections[player.id]
            self.players.pop(player.id, None)
        self.presence.left(player.id, GAME)

    def online(self, account_id: int) -> bool:
        """Connected to this node."""
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

    def anywhere(self, account_id: int) -> bool:
        """Connected to any node of the cluster (to this one when alone)."""
        return account_id in self.connections or (
            self.clustered and self.presence.is_online(account_id, GAME))

    def send_here(self, account_id: int, text: str) -> None:
        for connection in self.connections.get(account_id, ()):
            connection.channel.send_text(text)

    def send_to(self, account_id: int, text: str) -> None:
        """To every connection of the account, on this node and the others."""
        self.send_here(account_id, text)
        nodes = self.presence.nodes_of(account_id, GAME)
        if nodes:
            self.bus.publish("uttt.send", {"a": account_id, "x": text}, nodes)

    def _remote_send(self, message: dict, sender: str) -> None:
        self.send_here(message["a"], message["x"])

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
        """The committed state to both players, wherever they are; the other nodes also
        refresh their copy of the match."""
        text = self.update_text(match)
        for player in match.players():
            self.send_here(player.id, text)
        nodes = (self.presence.nodes_of(match.player_a.id, GAME)
                 | self.presence.nodes_of(match.player_b.id, GAME)) if self.clustered else ()
        if nodes:  # the other nodes read the match from the database when they need it
            last = match.board.last_move
            self.bus.publish("uttt.match", {
                "id": match.id, "x": text, "r": match.ranked,
                "a": [match.player_a.id, match.player_a.name, match.player_a.guest],
                "b": [match.player_b.id, match.player_b.name, match.player_b.guest],
                "c": match.board.encode_cells(), "l": last.encode() if last else None,
                "n": match.board.moves,
                "at": match.created_at, "mt": match.last_move_at,
                "end": list(match.result) if match.result else None}, nodes)

    def _remote_match(self, message: dict, sender: str) -> None:
        """A match changed on another node (committed there): copy, then tell ours."""
        match = self.matches.get(message["id"])
        if message["end"] is not None:
            if match is not None and not match.pending:
                self._unregister(match)
        else:
            board = None
            moves = message.get("n")
            if moves is None:  # (a node of an earlier version: no move count)
                board = rules.decode_board(message["c"], message["l"])
                moves = board.moves
            if match is None:
                board = board or rules.decode_board(message["c"], message["l"])
                match = LiveMatch(message["id"], self._player(*message["a"]),
                                  self._player(*message["b"]), message["r"], board,
                                  message["at"], message["mt"])
                self._register(match)
            elif moves <= match.board.moves:
                # shown here already: a login listed it (read from the database) before
                # this news arrived, or the news is older
                return
            elif not match.pending:
                match.board = board or self._board_after(match.board, message)
                match.last_move_at = message["mt"]
                self._schedule_deadline(match)
        for key in ("a", "b"):
            self.send_here(message[key][0], message["x"])

    @staticmethod
    def _board_after(board: rules.Board, message: dict) -> rules.Board:
        """The committed position another node sent: one move on from this node's copy
        when that is just one behind, played here (a fraction of the cost of decoding 81
        cells; the cells are still compared), else decoded whole."""
        last = message["l"]
        if last is not None and message["n"] == board.moves + 1:
            try:
                after = rules.play(board, board.to_move, rules.Move.decode(last))
            except (rules.IllegalMove, ValueError):
                after = None
            if after is not None and after.encode_cells() == message["c"]:
                return after
        return rules.decode_board(message["c"], last)

    def _player(self, account_id: int, name: str, guest: bool) -> Player:
        return self.players.get(account_id) or Player(account_id, name, guest)

    @defer.inlineCallbacks
    def refresh(self, account_id: int):
        """Read the account's open matches from the database (a cluster node's copies may
        be stale after a cut from Redis, or another node's change not heard yet)."""
        if not self.clustered:
            return
        rows = yield self.store.open_matches_of(account_id)
        open_ids = set()
        for row in rows:
            open_ids.add(row.id)
            match = self.matches.get(row.id)
            if match is None:
                self._adopt(row)
            elif not match.pending and row.moves >= match.board.moves:
                match.board = rules.decode_board(row.board, row.last_move)
                match.last_move_at = row.last_move_at
                self._schedule_deadline(match)
        for match_id in list(self.open_of.get(account_id, ())):
            match = self.matches.get(match_id)
            if match_id not in open_ids and match is not None and not match.pending:
                self._unregister(match)

    def catch_up(self) -> None:
        """Back in the cluster after a cut: news of the other nodes' moves was lost, so
        every player here is shown its matches as the database has them."""
        for account_id in list(self.connections):
            d = self.refresh(account_id)

            def show(_, account_id=account_id):
                for match in self.matches_of(account_id):
                    self.send_here(account_id, self.update_text(match))

            d.addCallback(show)
            d.addErrback(lambda f: log.failure("uttt: catching up after a cut failed", f))

    def _stale(self, reason, match: LiveMatch):
        """A write refused because another node changed the match first: take the
        database's version and say so."""
        if not reason.check(StaleMatch):
            return reason
        d = self.store.get_match(match.id)

        def reread(row):
            if row is None or not row.is_open:
                self._unregister(match)
                if row is not None:
                    text = self.stored_update_text(row)
                    for player in match.players():
                        self.send_here(player.id, text)
            else:
                match.board = rules.decode_board(row.board, row.last_move)
                match.last_move_at = row.last_move_at
                self._schedule_deadline(match)
                text = self.update_text(match)
                for player in match.players():
                    self.send_here(player.id, text)
            raise rules.IllegalMove("stale", "the match changed meanwhile; its state follows")

        return d.addCallback(reread)

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
                                   [self.anywhere(f.id) for f in friends]))

    @defer.inlineCallbacks
    def push_friends_update(self, account_id: int, here_only: bool = False):
        if not (self.online(account_id) if here_only else self.anywhere(account_id)):
            return
        message = yield self.friends_update(account_id)
        (self.send_here if here_only else self.send_to)(account_id, encode(message))

    def friends_changed_everywhere(self, account_id: int) -> None:
        """The account's rating changed: its friends on every node get fresh lists."""
        self._friends_changed(account_id)
        self.bus.publish("uttt.friends", {"a": account_id})

    def _presence_changed(self, account_id: int, game: str, online: bool) -> None:
        if game == GAME:
            self._friends_changed(account_id)

    def _friends_changed(self, account_id: int) -> None:
        """Send fresh friends_updates to the online friends of `account_id`."""
        d = self._tell_friends(account_id)
        d.addErrback(lambda f: log_failure(log, "uttt: telling friends of {id} failed", f,
                                           id=account_id))

    @defer.inlineCallbacks
    def _tell_friends(self, account_id: int):
        player = self.players.get(account_id)
        if player is not None and player.guest:
            return
        friends = yield self.friends.friends_of(account_id)
        for friend in friends:
            if self.online(friend.id):  # every node tells its own (presence is seen by all)
                yield self.push_friends_update(friend.id, here_only=True)

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

    def _may_play(self, account_id: int) -> bool:
        return (self.anywhere(account_id)
                and self.open_count(account_id) < self.settings.max_open_matches)

    @staticmethod
    def _seeker(key: str, entry: dict) -> matchmaking.Seeker:
        return matchmaking.Seeker(int(key), entry["rating"], entry["since"])

    def _take(self, key: str, entry: dict) -> Player:
        """An entry taken from the queue: kept (to wait again if the match cannot be
        written) until `matched`."""
        account_id = int(key)
        self.taken[account_id] = (entry, self.waiting.pop(account_id, None))
        return self._player(account_id, entry["name"], entry["guest"])

    @defer.inlineCallbacks
    def seek(self, connection: "UtttConnection", player: Player):
        """Queue for a random opponent (on any node); fires with the waiting player to
        start with, if any."""
        now = self.clock.seconds()
        seeker = matchmaking.Seeker(player.id, player.rating, now)
        for _attempt in range(3):  # another node may take the one chosen first
            entries = yield self.queue.entries(GAME)
            candidates = [self._seeker(key, entry) for key, entry in entries.items()
                          if int(key) != player.id and self._may_play(int(key))]
            opponent = matchmaking.best_opponent(seeker, candidates, now, self.window)
            if opponent is None:
                break
            key = str(opponent.key)
            taken = yield self.queue.take(GAME, [key])
            if taken is not None:
                return self._take(key, taken[key])
        self.waiting[player.id] = connection
        try:
            yield self.queue.join(GAME, str(player.id), {
                "name": player.name, "guest": player.guest, "rating": player.rating,
                "since": now})
        except Exception:
            if self.waiting.get(player.id) is connection:
                del self.waiting[player.id]
            raise
        return None

    def matched(self, player_id: int, started: bool) -> None:
        """A waiting player taken for a match: it started, or its write failed and the
        player waits again (in its old place) if still online."""
        taken = self.taken.pop(player_id, None)
        if taken is None or started or not self.anywhere(player_id):
            return
        entry, connection = taken
        if connection is not None:
            if not self.online(player_id) or player_id in self.waiting:
                return
            self.waiting[player_id] = connection
        self.queue.join(GAME, str(player_id), entry).addErrback(self._queue_failed)

    def _queue_failed(self, reason) -> None:
        log.warn("uttt: the match queue failed: {error}", error=reason.getErrorMessage())

    def pair_waiting(self) -> defer.Deferred:
        """Pair waiting players whose windows have widened enough (runs periodically)."""
        return self._pair_waiting().addErrback(self._queue_failed)

    @defer.inlineCallbacks
    def _pair_waiting(self):
        entries = yield self.queue.entries(GAME)
        if len(entries) < 2:
            return
        now = self.clock.seconds()
        eligible = [self._seeker(key, entry) for key, entry in entries.items()
                    if self._may_play(int(key))]
        for first, second in matchmaking.pairs(eligible, now, self.window):
            keys = (str(first.key), str(second.key))
            taken = yield self.queue.take(GAME, keys)
            if taken is None:
                continue  # another node paired one of them first
            players = [self._take(key, taken[key]) for key in keys]
            d = self.create_match(players[0], players[1], invite=False)

            def done(result, ids=(first.key, second.key)):
                started = not isinstance(result, failure.Failure)
                for account_id in ids:
                    self.matched(account_id, started)
                if not started:
                    log_failure(log, "uttt: starting a queued match failed; both wait again",
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
            return self._stale(reason, match)

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
        seen = tuple(self.anywhere(p.id) for p in match.players())
        op = MatchClosed(match.id, winner, draw, reason, now, result,
                         final[0] if final else None, seen, match.board.moves)

        def committed(recorded):
            match.pending = False
            match.board = board
            if final:
                match.last_move_at = now
                self.moves_counter.inc()
            match.result = (winner, draw, reason)
            self._unregister(match)
            for player, was_online in zip(match.players(), seen):
                if was_online and not self.anywhere(player.id):
                    # gone while the result was written: it will not see the announcement
                    self.store.mark_unseen(match.id, player.id).addErrback(
                        lambda f: log_failure(log, "uttt: marking a result unseen failed", f))
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
                    self.friends_changed_everywhere(player.id)  # lists show this rating
            return match

        def failed(reason_):
            match.pending = False
            return self._stale(reason_, match)

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
        if not self.anywhere(player.id):
            return
        d = self.elo_update(player)
        d.addCallback(lambda message: self.send_to(player.id, encode(message)))
        d.addErrback(lambda f: log_failure(log, "uttt: elo_update for {name} failed", f,
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
        log_failure(log, "uttt: ending match {id} on timeout failed; retrying in 60 s", reason,
                    id=match.id)
        if match.id in self.matches:
            match.deadline_call = self.clock.callLater(60.0, self._deadline_passed, match.id)
