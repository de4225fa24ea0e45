"""The novaglide service: login-or-register, queries, the rating queue and 60 Hz matches.

`NovaglideGame` owns who is online, the queue and the running matches, and steps every
match from one shared 60 Hz `LoopingCall` (a late tick catches up by stepping the missed
frames, and is counted). `NovaConnection` is the per-connection handler: it answers each
flag from a dispatch table in the blueprint's packet shape
`{"time", "sender": "server", "flag", "data"}`. Results are committed (match, players,
both Elo changes) before `end_game_state_1` is sent.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import secrets
import time
from typing import Optional

import attrs
from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from gamed.core.accounts import UNAVAILABLE, AuthError
from gamed.core.channel import ConnectionHandler, encode
from gamed.core.live import GameMonitor, RunningMatch, UnknownMatch
from gamed.core.logs import log_failure
from gamed.core.recording import record_with_retries
from gamed.novaglide import rules
from gamed.novaglide.cluster import NovaglideCluster
from gamed.novaglide.matchmaking import Queue
from gamed.novaglide.classic_wire import state_replies
from gamed.novaglide.messages import (STATUS_FLAGS, packet, parse_input, state_packet,
                                      state_tail)
from gamed.novaglide.settings import NovaglideSettings
from gamed.store.database import DatabaseUnavailable
from gamed.store.ratings import MatchPlayer, MatchResult

log = Logger(namespace="gamed.novaglide")

GAME = "novaglide"
#: match ends that change no rating: the server stopped, or both players left for good
UNRATED_REASONS = ("aborted", "abandoned")
MAX_CATCH_UP = 5  # frames stepped at most for one late tick
TICK_LATENESS_BUCKETS = (0.001, 0.002, 0.004, 0.008, rules.DT, 2 * rules.DT, 0.1, 1.0)
TICK_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.012, rules.DT, 0.025, 0.05)


def winrate(row) -> float:
    """Percent of games won (0 with no game), as `Rating.winrate`."""
    played = row.wins + row.losses + row.draws
    return 100.0 * row.wins / played if played else 0.0


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


@attrs.define(eq=False)
class Match:
    id: int
    accounts: dict  # side -> Account
    names: tuple
    ratings: dict  # side -> rating before
    started_at: str
    arena: rules.Arena
    inputs: dict = attrs.Factory(lambda: {1: rules.IDLE, 2: rules.IDLE})
    links: dict = attrs.Factory(lambda: {1: None, 2: None})  # side -> NovaConnection
    gone_since: dict = attrs.Factory(dict)  # side -> when its player dropped
    forfeited_by: Optional[int] = None
    ending: bool = False
    names_json: str = ""
    classic_frame: int = -1  # the frame `classic` shows
    classic: tuple = ()  # game_state_1 pickled for each side (the classic wire)
    tail_frame: int = -1  # the frame `tail` shows (JSON lines)
    tail: str = ""
    #: the result's key in the store: a retried write never records the match twice
    key: str = attrs.Factory(lambda: "novaglide-" + secrets.token_hex(16))

    def __attrs_post_init__(self):
        self.names_json = encode(list(self.names))[1:-1]  # '"ann","ben"'

    def classic_states(self, stamp: str) -> tuple:
        """This frame's game_state_1 pickled for side 1 and 2 (the classic wire)."""
        frame = self.arena.frame
        if self.classic_frame != frame:
            self.classic_frame = frame
            self.classic = state_replies(self.arena.state_fields(self.names), stamp)
        return self.classic

    def state_tail(self) -> str:
        """This frame's game_state_1 fields after your_side as JSON text, formatted once
        for both sides (see `messages.state_tail`)."""
        frame = self.arena.frame
        if self.tail_frame != frame:
            self.tail_frame, self.tail = frame, state_tail(self.arena, self.names_json)
        return self.tail

    def side_of(self, account_id: int) -> Optional[int]:
        for side, account in self.accounts.items():
            if account.id == account_id:
                return side
        return None


@attrs.frozen
class MatchEnd:
    """How a match ended, for its players' connections to announce in their wire's shape."""

    match: Match
    winner: Optional[int]  # side, None for a draw or an unrated end
    #: side -> rating after the match; None when the result could not be saved
    after: Optional[dict]
    #: side -> rating before the match
    before: dict

    @property
    def saved(self) -> bool:
        return self.after is not None

    @property
    def winner_name(self) -> Optional[str]:
        return self.match.names[self.winner - 1] if self.winner is not None else None

    def stats(self, elo_of) -> dict:
        """Per player name (side order): touches, goals, possession and `elo_of(side)`."""
        arena = self.match.arena
        summary = {}
        for side in (1, 2):
            stats = arena.stats[side]
            summary[self.match.names[side - 1]] = {
                "touches": stats.touches, "goals": stats.goals,
                "possession_time": round(stats.possession_time, 2), "elo": elo_of(side)}
        return summary


class NovaglideGame(service.Service):
    name = "novaglide-game"

    def __init__(self, core, settings: NovaglideSettings, clock=None):
        self.core = core
        self.settings = settings
        self.clock = clock if clock is not None else core.reactor
        self.queue = Queue(self.settings.match_window, self.settings.match_window_widen,
                           self.settings.match_window_max)
        self.online: dict = {}  # account id -> NovaConnection
        # a login on another node of the cluster takes the account's session over
        core.presence.on_taken_over(GAME, self.taken_over)
        # in a cluster: one queue for every node, players of other nodes in matches here
        cluster = getattr(core, "cluster", None)
        self.cluster = (NovaglideCluster(self, cluster)
                        if cluster is not None and cluster.clustered else None)
        self.matches: list = []
        self.match_of: dict = {}  # account id -> Match
        self.match_ids = itertools.count(1)
        self.recording: set = set()  # Deferreds of results being written
        #: connections to call once the current tick's states are out (the classic wire
        #: answers its lockstep requests then)
        self.tick_waiters: set = set()
        self.draining = False
        self.ticker = task.LoopingCall.withCount(self.tick)
        self.ticker.clock = self.clock
        self.pairer = task.LoopingCall(self.pair)
        self.pairer.clock = self.clock
        metrics = core.metrics
        self.late_ticks = metrics.counter("novaglide_late_ticks",
                                          "60 Hz ticks that ran late (frames caught up)")
        self.ticks = metrics.counter("novaglide_ticks", "60 Hz ticks run")
        self.tick_lateness = metrics.histogram(
            "novaglide_tick_lateness_seconds",
            "How long after its 60 Hz schedule each tick started",
            buckets=TICK_LATENESS_BUCKETS)
        self.tick_seconds = metrics.histogram(
            "novaglide_tick_seconds",
            "Time one tick spends stepping every match and sending its states "
            "(the budget is 1/60 s)", buckets=TICK_SECONDS_BUCKETS)
        self.frames_due = 0  # frames the ticker has asked for since it started
        metrics.gauge("novaglide_matches", "Running novaglide matches").set_function(
            lambda: len(self.matches))
        metrics.gauge("novaglide_queue", "Players waiting for a novaglide match").set_function(
            lambda: len(self.queue))

    # -- service ----------------------------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self.ticker.start(rules.DT, now=False)
        self.pairer.start(0.5, now=False)

    def stopService(self):
        """Drain: running matches are recorded as aborted (no rating change), everyone is
        told, connections close once the results are committed."""
        service.Service.stopService(self)
        self.draining = True
        for loop in (self.ticker, self.pairer):
            if loop.running:
                loop.stop()
        for match in list(self.matches):
            self.end_match(match, reason="aborted")
        for connection in list(self.online.values()):
            connection.send("change_of_status", ["server_closing",
                                                 "the server is shutting down", "unknown"])
        d = defer.DeferredList(list(self.recording), consumeErrors=True)
        d.addCallback(lambda _: [c.channel.close("server shutdown")
                                 for c in list(self.online.values())])
        return d

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.seconds()

    def tick(self, count: int = 1) -> None:
        started = time.perf_counter()  # the work's own duration, whatever clock drives it
        now = self.now()
        self.ticks.inc()
        if count > 1:
            self.late_ticks.inc()
        ticker = self.ticker
        if ticker.starttime is not None:  # late by the oldest frame this tick steps
            due = ticker.starttime + ticker.interval * (self.frames_due + 1)
            self.tick_lateness.observe(max(0.0, now - due))
        self.frames_due += count
        steps = min(count, MAX_CATCH_UP)
        stamp = iso(now)
        grace = self.settings.rejoin_grace
        for match in list(self.matches):
            try:
                self.advance(match, steps, now, grace, stamp)
            except Exception:  # one broken match must not stop the ticker for all
                log_failure(log, "novaglide: match {match_id} failed; ending it as aborted",
                            match_id=match.id)
                try:
                    self.end_match(match, reason="aborted")
                except Exception:
                    log_failure(log, "novaglide: match {match_id} could not be ended; dropped",
                                match_id=match.id)
                    self.drop_match(match)
        if self.tick_waiters:
            waiters, self.tick_waiters = self.tick_waiters, set()
            for connection in waiters:
                connection.after_tick()
        self.tick_seconds.observe(time.perf_counter() - started)

    def advance(self, match: Match, steps: int, now: float, grace: float, stamp: str) -> None:
        """One tick of one match: its frames, its rejoin clock, its end or its state."""
        arena = match.arena
        for _ in range(steps):
            arena.step(match.inputs)
        if match.gone_since:
            expired = [side for side, since in match.gone_since.items()
                       if now - since >= grace]
            if expired and len(match.gone_since) == 2:
                # the first grace ran out and the other player is gone too: nobody wins,
                # nothing is rated
                self.end_match(match, reason="abandoned")
                return
            if expired and not arena.finished:
                match.forfeited_by = expired[0]
                arena.forfeit(expired[0])
        if arena.finished:
            self.end_match(match)
            return
        self.push_state(match, stamp)

    def push_state(self, match: Match, stamp: str) -> None:
        # the 22 shared fields are formatted once (one C-level format, no json.dumps);
        # only your_side and player_id differ between the two players' packets
        for side in (1, 2):
            link = match.links[side]
            if link is not None:
                link.send_state(match, side, stamp)

    # -- queue and matches ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def enqueue(self, connection: "NovaConnection"):
        account = connection.account
        rating = yield self.core.ratings.get_rating(account.id, GAME)
        if self.online.get(account.id) is not connection or account.id in self.match_of:
            return  # left, replaced or already playing while the rating was read
        self.queue.add(account.id, rating.rating, self.now())
        if self.cluster is not None:
            self.cluster.join(account.id, rating.rating, self.queue.entries[account.id].since,
                              connection.portable_states)
        self.pair()

    def pair(self):
        if self.draining:
            return None
        if self.cluster is not None:  # the cluster's queue holds every node's players
            return self.cluster.pair()
        for first, second in self.queue.pairs(self.now()):
            a, b = self.online.get(first.account_id), self.online.get(second.account_id)
            if a is None or b is None:  # gone meanwhile: the other waits again
                for entry, conn in ((first, a), (second, b)):
                    if conn is not None:
                        self.queue.add(entry.account_id, entry.rating, entry.since)
                continue
            self.start_match(a, b, first.rating, second.rating)

    def start_match(self, one: "NovaConnection", two: "NovaConnection", rating_one: float,
                    rating_two: float) -> Match:
        arena = rules.Arena(match_frames=int(self.settings.match_seconds * rules.FPS))
        match = Match(next(self.match_ids), {1: one.account, 2: two.account},
                      (one.account.name, two.account.name), {1: rating_one, 2: rating_two},
                      iso(self.now()), arena)
        match.links = {1: one, 2: two}
        self.matches.append(match)
        for side, connection in ((1, one), (2, two)):
            self.match_of[connection.account.id] = match
        log.info("novaglide: match {match_id} {one} vs {two}", match_id=match.id,
                 one=match.names[0], two=match.names[1])
        self.push_state(match, iso(self.now()))
        return match

    def end_match(self, match: Match, reason: Optional[str] = None) -> defer.Deferred:
        """Record the result, then announce it (end_game_state_1) and free the players."""
        if match.ending:
            return defer.succeed(None)
        match.ending = True
        if match in self.matches:
            self.matches.remove(match)
        arena = match.arena
        if reason is None:
            reason = ("forfeit" if match.forfeited_by is not None
                      else "golden_goal" if arena.tiebreak else "time")
        aborted = reason in UNRATED_REASONS
        winner = None if aborted else arena.winner
        players = []
        for side in (1, 2):
            outcome = "draw" if winner is None else ("win" if side == winner else "loss")
            stats = arena.stats[side]
            players.append(MatchPlayer(match.accounts[side].id, outcome, arena.score[side], {
                "touches": stats.touches, "goals": stats.goals,
                "possession_time": round(stats.possession_time, 2)}))
        result = MatchResult(GAME, players, reason, ranked=not aborted,
                             k_factor=self.settings.k_factor, started_at=match.started_at,
                             ended_at=iso(self.now()),
                             key=match.key,
                             details={"score": [arena.score[1], arena.score[2]],
                                      "tiebreak": arena.tiebreak,
                                      "seconds": round(arena.frame / rules.FPS, 2)})
        d = self.record(result)
        d.addCallbacks(self.announce, self.unrecorded, callbackArgs=(match, winner),
                       errbackArgs=(match, winner))
        return d

    def drop_match(self, match: Match) -> None:
        """Forget a match that could not even be ended: its players are free again."""
        if match in self.matches:
            self.matches.remove(match)
        for side in (1, 2):
            if self.match_of.get(match.accounts[side].id) is match:
                del self.match_of[match.accounts[side].id]

    def record(self, result: MatchResult) -> defer.Deferred:
        d = record_with_retries(self.core.ratings, result, self.clock, GAME)
        self.recording.add(d)
        d.addBoth(lambda value: (self.recording.discard(d), value)[1])
        return d

    def unrecorded(self, failure, match: Match, winner: Optional[int]) -> None:
        """The result could not be stored (after retries): free the players, tell them."""
        log_failure(log, "novaglide: match {match_id} could not be recorded", failure,
                    match_id=match.id)
        ended = MatchEnd(match, winner, after=None, before=dict(match.ratings))
        for side in (1, 2):
            self.match_of.pop(match.accounts[side].id, None)
            link = match.links[side]
            if link is not None:
                link.match_ended(ended, side)

    def announce(self, recorded, match: Match, winner: Optional[int]) -> None:
        arena = match.arena
        ids = {side: match.accounts[side].id for side in (1, 2)}
        ended = MatchEnd(match, winner, after={
            side: recorded.ratings[ids[side]].rating for side in (1, 2)}, before={
            side: (recorded.changes[ids[side]].before if ids[side] in recorded.changes
                   else match.ratings[side]) for side in (1, 2)})
        winner_name = ended.winner_name
        for side in (1, 2):
            self.match_of.pop(match.accounts[side].id, None)
            link = match.links[side]
            if link is not None:
                link.match_ended(ended, side)
        log.info("novaglide: match {match_id} ended {score} winner {winner}",
                 match_id=match.id, score="%d-%d" % (arena.score[1], arena.score[2]),
                 winner=winner_name)

    # -- connections -----------------------------------------------------------------------------

    def logged_in(self, connection: "NovaConnection") -> Optional[Match]:
        """Make connection the account's one connection; put it back in its match."""
        account = connection.account
        previous = self.online.get(account.id)
        if previous is not None and previous is not connection:
            previous.send("change_of_status", ["offline", "logged in from another connection",
                                               account.id])
            previous.replaced = True
            previous.channel.close("replaced")
            self.queue.remove(account.id)  # the new client queues for itself if it wants
            if self.cluster is not None:
                self.cluster.leave(account.id)
        self.online[account.id] = connection
        self.core.presence.take_over(GAME, account.id)  # the session on another node ends
        if previous is None:  # a takeover keeps the one presence the account has here
            self.core.presence.arrived(account.id, GAME)
        match = self.match_of.get(account.id)
        if match is not None and not match.ending:
            side = match.side_of(account.id)
            match.links[side] = connection
            match.gone_since.pop(side, None)
            log.info("novaglide: {name} rejoined match {match_id}", name=account.name,
                     match_id=match.id)
        elif self.cluster is not None:  # its match may run on another node
            self.cluster.logged_in(account.id)
        return match

    def abort_match(self, match_id: str) -> defer.Deferred:
        """The operator ends a running match: recorded as aborted (no rating change)."""
        for match in self.matches:
            if str(match.id) == match_id:
                return self.end_match(match, reason="aborted")
        raise UnknownMatch("no running novaglide match %s" % match_id)

    def disconnect(self, account_id: int) -> int:
        """Close the account's connection (the operator banned it)."""
        connection = self.online.get(account_id)
        if connection is None:
            return 0
        connection.channel.close("disconnected by the operator")
        return 1

    def taken_over(self, account_id: int) -> None:
        """The account logged in on another node: its connection here ends, as a second
        login here would end it (its match goes on without it until it comes back)."""
        previous = self.online.get(account_id)
        if previous is None:
            return
        previous.send("change_of_status", ["offline", "logged in from another connection",
                                           account_id])
        previous.channel.close("replaced")

    def disconnected(self, connection: "NovaConnection") -> None:
        account = connection.account
        if account is None:
            return
        if self.online.get(account.id) is connection:
            del self.online[account.id]
            self.queue.remove(account.id)
            self.core.presence.left(account.id, GAME)
            if self.cluster is not None:
                self.cluster.leave(account.id)
                self.cluster.disconnected(account.id)
        match = self.match_of.get(account.id)
        if match is not None and match.links.get(match.side_of(account.id)) is connection:
            self.seat_dropped(match, match.side_of(account.id))

    def seat_dropped(self, match: Match, side: int) -> None:
        """The side's player is gone: idle from now, back within the rejoin grace or it
        forfeits."""
        match.links[side] = None
        match.inputs[side] = rules.IDLE
        match.gone_since[side] = self.now()

    def status_of(self, connection: "NovaConnection") -> str:
        account = connection.account
        if account is None:
            return "unknown"
        if account.id in self.match_of or (self.cluster is not None
                                            and self.cluster.in_match(account.id)):
            return "ingame"
        if account.id in self.queue:
            return "waiting_for_opponent"
        return "online"


class NovaConnection(ConnectionHandler):
    """One pygame client."""

    #: its match states can be sent as JSON text from another node of a cluster
    portable_states = True

    def __init__(self, game: NovaglideGame):
        self.game = game
        self.account = None
        self.replaced = False
        self.logging_in = False
        self.dispatch = {
            "log_in_data": self.on_login,
            "get_elo": self.on_get_elo,
            "get_winrate": self.on_get_winrate,
            "get_match_history": self.on_history,
            "game_history": self.on_history,
            "get_challengers": self.on_challengers,
            "queued_solo": self.on_queue,
            "ingame": self.on_ingame,
        }
        #: flags a connection may send before logging in
        self.public = {"log_in_data"}
        for flag in STATUS_FLAGS:
            if flag not in self.dispatch:  # "ingame" is input, not a status
                self.dispatch[flag] = functools.partial(self.on_status, flag)
                self.public.add(flag)

    # -- sending ----------------------------------------------------------------------------

    def send(self, flag: str, data: list, **extra) -> None:
        self.channel.send(packet(flag, data, iso(self.game.now()), **extra))

    def error_message(self, code, detail, request):
        return packet("error", [code, detail], iso(self.game.now()))

    def fail(self, code: str, detail: str) -> None:
        self.channel.send(self.error_message(code, detail, None))

    def send_state(self, match: Match, side: int, stamp: str) -> None:
        """This tick's game_state_1 (pushed: JSON-lines clients read states as they come)."""
        self.channel.send_text(state_packet(stamp, side, match.state_tail()))

    def match_ended(self, ended: MatchEnd, side: int) -> None:
        """end_game_state_1 with the ratings after the match, or why nothing was saved."""
        if not ended.saved:
            self.fail("result_not_saved", "the match ended but its result could not be "
                                          "saved; it does not count")
            return
        self.send("end_game_state_1", [ended.stats(lambda s: round(ended.after[s], 2)),
                                       ended.winner_name], player_id=side)

    def after_tick(self) -> None:
        """Called once after a tick this connection asked to wait for (classic wire)."""

    # -- incoming ------------------------------------------------------------------------------

    def message_received(self, message: dict) -> None:
        flag = message.get("flag")
        handler = self.dispatch.get(flag) if isinstance(flag, str) else None
        if handler is None:
            self.fail("unknown_flag", "unknown flag %r" % (flag,))
            return
        data = message.get("data")
        if not isinstance(data, list):
            self.fail("bad_data", "data must be a list")
            return
        if self.account is None and flag not in self.public:
            self.fail("not_logged_in", "log in first (log_in_data [name, password])")
            return
        result = handler(data)
        if isinstance(result, defer.Deferred):
            result.addErrback(self._failed, flag)

    def _failed(self, failure, flag):
        log_failure(log, "novaglide: {flag} failed", failure, flag=flag)
        if failure.check(DatabaseUnavailable):
            self.fail("unavailable", UNAVAILABLE)
        else:
            self.fail("internal_error", "the server could not answer %s" % flag)

    def connection_lost(self, reason: str) -> None:
        self.game.disconnected(self)

    # -- login and status ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def on_login(self, data):
        if self.account is not None:
            self.fail("already_logged_in", "this connection is logged in as %s"
                      % self.account.name)
            return
        if self.logging_in:
            self.fail("busy", "a login is already in progress on this connection")
            return
        if len(data) < 2 or not isinstance(data[0], str) or not isinstance(data[1], str):
            self.send("change_of_status", ["waiting_for_approval",
                                           "log_in_data needs [name, password]", "unknown"])
            return
        self.logging_in = True
        try:
            account, created = yield self.game.core.accounts.login_or_register(
                data[0], data[1], self.channel.peer)
        except AuthError as exc:
            self.send("change_of_status", ["waiting_for_approval", exc.message, "unknown"])
            return
        finally:
            self.logging_in = False
        if self.channel is None or getattr(self.channel, "closed", False):
            return
        self.account = account
        self.game.logged_in(self)
        self.send("change_of_status", ["online", "registering new user" if created
                                       else "known user", account.id])

    def on_status(self, client_status, data):
        """The client shares its status; the answer is the server's view. A client that
        says "online" (not searching) while queued has left the queue."""
        if client_status == "online" and self.account is not None:
            self.game.queue.remove(self.account.id)
        self.send("change_of_status", [self.game.status_of(self),
                                       self.account.name if self.account else "not logged in",
                                       self.account.id if self.account else "unknown"])

    # -- queries ---------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _account_named(self, data):
        name = data[0] if data and isinstance(data[0], str) and data[0] != "no_data" else None
        if name is None or name.casefold() == self.account.name_key:
            return self.account
        account = yield self.game.core.accounts.find_account(name)
        if account is None:
            self.fail("unknown_player", "no player named %r" % name)
        return account

    @defer.inlineCallbacks
    def on_get_elo(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        ratings = self.game.core.ratings
        rating = yield ratings.get_rating(account.id, GAME)
        top = yield ratings.leaderboard(GAME, self.game.settings.top_rows)
        self.send("client_elo", [round(rating.rating, 2),
                                 [[row.name, round(row.rating, 2)] for row in top]])

    @defer.inlineCallbacks
    def on_get_winrate(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        rating = yield self.game.core.ratings.get_rating(account.id, GAME)
        self.send("winrate", [round(rating.winrate, 1)])

    @defer.inlineCallbacks
    def on_history(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        rows = yield self.game.core.ratings.history(account.id, GAME, limit=20)
        self.send("match_history", [[
            [row.opponents[0] if row.opponents else None, row.score,
             row.opponent_scores[0] if row.opponent_scores else None, row.outcome,
             round((row.rating_after or 0) - (row.rating_before or 0), 2), row.ended_at,
             row.reason]
            for row in rows]])

    @defer.inlineCallbacks
    def on_challengers(self, data):
        """The rated players, best first (the seed's get_challengers query), without you."""
        rows = yield self.game.core.ratings.leaderboard(
            GAME, self.game.settings.challengers_rows + 1)
        rows = [row for row in rows if row.account_id != self.account.id]
        self.send("challengers", [[[row.name, round(winrate(row), 1), round(row.rating, 2)]
                                   for row in rows[: self.game.settings.challengers_rows]]])

    # -- playing ----------------------------------------------------------------------------------

    def on_queue(self, data):
        game = self.game
        if game.draining:
            self.fail("server_closing", "the server is shutting down")
            return None
        if self.account.id in game.match_of or (game.cluster is not None
                                                 and game.cluster.in_match(self.account.id)):
            self.fail("already_in_match", "you are in a match")
            return None
        self.send("Waiting_for_opponent", ["no_data"])
        return game.enqueue(self)

    def on_ingame(self, data):
        if data == ["no_data"]:  # the client sharing its status "ingame", not input
            self.on_status("ingame", data)
            return
        match = self.game.match_of.get(self.account.id)
        nova = self.game.cluster
        if match is None and nova is not None and nova.in_match(self.account.id):
            try:
                parse_input(data)
            except ValueError as exc:
                self.fail("bad_input", str(exc))
                return
            nova.input(self.account.id, data)  # its match runs on another node
            return
        if match is None or match.ending:
            self.fail("not_in_match", "ingame input outside a match")
            return
        try:
            control = parse_input(data)
        except ValueError as exc:
            self.fail("bad_input", str(exc))
            return
        match.inputs[match.side_of(self.account.id)] = control  # applied on the next tick


def make_service(core, clock=None, settings=None) -> service.IService:
    settings = settings if settings is not None else core.config.novaglide
    top = service.MultiService()
    top.setName(GAME)
    game = NovaglideGame(core, settings, clock)
    game.setServiceParent(top)
    top.game = game
    if game.cluster is not None and getattr(core, "handoff", None) is not None:
        from gamed.novaglide.handoff import NovaglideHandoff

        game.cluster.handoff = NovaglideHandoff(game, core.handoff, core.endpoints)
    core.live.register(GAME, GameMonitor(
        count=lambda: len(game.matches),
        running=lambda: [RunningMatch(GAME, str(m.id), tuple(m.names)) for m in game.matches],
        end_match=game.abort_match, disconnect=game.disconnect))
    from gamed.novaglide.classic import classic_listener

    listeners = (core.stream_listeners(GAME, settings.listen, lambda: NovaConnection(game),
                                       settings),
                 classic_listener(core, game, settings))
    for listener in listeners:
        if listener is not None:
            listener.setServiceParent(top)
    return top
