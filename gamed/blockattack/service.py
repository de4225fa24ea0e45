"""The Block Attack UDP service: pairing, timestamp filtering, address binding, reliable
game_start / power_applied / game_end over a lossy transport, results in the store.

One `DatagramProtocol` (no threads). Every datagram is decoded and dispatched by its
`command`; anything malformed, unknown, stale or from the wrong address is dropped and
counted, and answered with a small error only where that cannot amplify: to an address
bound to a game, or when the error is no bigger than what was received.
"""

from __future__ import annotations

import json
import secrets
from typing import Optional

import attrs
from twisted.application import service
from twisted.internet import defer, protocol, task
from twisted.logger import Logger

from gamed.blockattack import messages, rules
from gamed.blockattack.cluster import Forwarding
from gamed.blockattack.messages import encode
from gamed.blockattack.settings import BlockattackSettings
from gamed.cluster.interface import ClusterUnavailable
from gamed.core.accounts import UNAVAILABLE, AuthError, check_name
from gamed.core.live import GameMonitor
from gamed.core.logs import log_failure
from gamed.core.recording import record_with_retries
from gamed.core.services import SequentialMultiService
from gamed.store.accounts import iso
from gamed.store.database import DatabaseUnavailable
from gamed.store.ratings import MatchPlayer, MatchResult

log = Logger(namespace="gamed.blockattack")

GAME = "blockattack"
TIMER_INTERVAL = 0.25
START_RESEND = 1.0  # seconds before the first repeat of game_start; doubles each time
START_RESEND_MAX = 8.0  # (the backoff bounds what a forged connect can make us send)
START_TRIES = 30
END_RESEND = 1.0
END_LINGER = 15.0  # seconds a finished game keeps resending game_end and answering
DRAIN_POLL = 0.05  # seconds between checks for the last game_end acks on shutdown


@attrs.define
class Waiting:
    name: str
    opponent: str
    address: tuple
    since: float
    size: int = 0  # bytes of its connect datagram (bounds what we may send back unpaired)


@attrs.define(eq=False)
class Game:
    name: str
    duel: rules.Duel
    addresses: dict  # player name -> (host, port)
    accounts: dict  # player name -> Account
    last_timestamp: dict = attrs.Factory(dict)  # player name -> last applied timestamp
    flux_seen: set = attrs.Factory(set)
    start_tries: int = 0
    next_start: float = 0.0
    ending: bool = False
    end_message: Optional[dict] = None  # per player: set once the result is committed
    end_acked: set = attrs.Factory(set)
    next_end: float = 0.0
    end_since: float = 0.0  # when game_end was first sent
    #: the result's key in the store: a retried write never records the game twice
    key: str = attrs.Factory(lambda: "blockattack-" + secrets.token_hex(16))
    resent_at: dict = attrs.Factory(dict)  # player -> when a repeated connect was answered

    def end_pending(self) -> bool:
        """game_end is out and someone who played has not acknowledged it (a player who
        never reported gets one copy, not repeats: its address may be forged)."""
        return self.end_message is not None and not self.flux_seen <= self.end_acked

    #: player name -> its last board as JSON bytes (dropped when a new board arrives)
    encoded_boards: dict = attrs.Factory(dict)

    def board_bytes(self, player: str) -> bytes:
        data = self.encoded_boards.get(player)
        if data is None:
            data = rules.board_json(self.duel.sides[player].board)
            self.encoded_boards[player] = data
        return data

    def player_at(self, address) -> Optional[str]:
        for name, bound in self.addresses.items():
            if bound == address:
                return name
        return None


class BlockattackService(service.Service, protocol.DatagramProtocol):
    name = GAME

    def __init__(self, core, settings: BlockattackSettings, clock=None, new_seed=None,
                 grace_period: float = 5.0):
        self.core = core
        self.settings = settings
        self.grace_period = grace_period  # [shutdown] grace_period: the drain's bound
        self.clock = clock if clock is not None else core.reactor
        self.new_seed = new_seed or (lambda: secrets.randbits(32))
        self.waiting: dict = {}  # name key -> Waiting
        self.pairing: set = set()  # name keys being paired (accounts being looked up)
        self.games: dict = {}  # game name -> Game
        self.game_of: dict = {}  # player name key -> Game (running or lingering)
        self.last_timestamp = 0
        self.recording: set = set()
        self.draining = False
        self.stats = core.metrics.service(GAME)
        self.dropped = core.metrics.counter("blockattack_dropped",
                                            "Datagrams dropped, by reason", ["reason"])
        core.metrics.gauge("blockattack_games", "Block Attack games running").set_function(
            lambda: sum(1 for g in self.games.values() if not g.duel.finished))
        self.timer = task.LoopingCall(self.on_timer)
        self.timer.clock = self.clock
        self.dispatch = {"connect": self.on_connect, "game_flux": self.on_flux,
                         "ack": self.on_ack, "forfeit": self.on_forfeit}
        # in a cluster: players of other nodes (see gamed/blockattack/cluster.py)
        cluster = getattr(core, "cluster", None)
        self.forwarding = (Forwarding(self, cluster)
                           if cluster is not None and cluster.clustered else None)

    # -- service -------------------------------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self.timer.start(TIMER_INTERVAL, now=False)

    def stopService(self):
        """Drain: new connects are refused, running games are recorded as aborted (no
        rating change), and game_end (reason server_shutdown) is resent to every player
        until both acknowledge it or the shutdown grace period runs out."""
        service.Service.stopService(self)
        self.draining = True
        for game in list(self.games.values()):
            if not game.duel.finished:
                game.duel.finish(self.now(), None, "server_shutdown")
                self.end_game(game)
        deadline = self.now() + self.grace_period
        d = defer.DeferredList(list(self.recording), consumeErrors=True)
        d.addCallback(lambda _: self._until_ends_acked(deadline))
        d.addBoth(self._stopped)
        return d

    @defer.inlineCallbacks
    def _until_ends_acked(self, deadline: float):
        """The timer keeps resending game_end meanwhile (every END_RESEND seconds)."""
        while self.now() < deadline and any(game.end_pending()
                                             for game in self.games.values()):
            yield task.deferLater(self.clock, DRAIN_POLL, lambda: None)

    def _stopped(self, result):
        if self.timer.running:
            self.timer.stop()
        unacked = sum(1 for game in self.games.values() if game.end_pending())
        if unacked:
            log.info("blockattack: stopped with {count} game_end not acknowledged",
                     count=unacked)
        for game in list(self.games.values()):
            self.forget(game)
        return result

    def startProtocol(self):
        """Read one byte more than the largest accepted datagram: Twisted's port reads
        8192 bytes by default and would hand a bigger datagram over cut short (and a cut
        datagram can still be valid JSON); one byte over the limit is enough to see it
        is oversize."""
        if hasattr(self.transport, "maxPacketSize"):
            self.transport.maxPacketSize = self.settings.max_datagram + 1

    def now(self) -> float:
        return self.clock.seconds()

    def timestamp(self) -> int:
        """Milliseconds since the epoch, strictly increasing across all replies."""
        self.last_timestamp = max(int(self.now() * 1000), self.last_timestamp + 1)
        return self.last_timestamp

    # -- input ---------------------------------------------------------------------------------

    def drop(self, reason: str) -> None:
        self.dropped.labels(reason).inc()
        self.stats.error(reason)

    def write(self, data: bytes, address) -> None:
        if self.forwarding is not None and self.forwarding.write(data, address):
            return
        self.transport.write(data, address)

    def send(self, message: dict, address) -> None:
        if self.transport is None:
            return
        self.stats.messages_out += 1
        self.write(encode(message), address)

    def answer_error(self, address, received: int, code: str, text: str) -> None:
        """A small error, only where it cannot amplify (see the module docstring)."""
        data = encode(messages.error(code, text, self.timestamp()))
        bound = any(address in g.addresses.values() for g in self.games.values())
        if len(data) > received and not bound:
            data = encode(messages.error(code))
            if len(data) > received:
                return
        if self.transport is not None:
            self.stats.messages_out += 1
            self.write(data, address)

    def datagramReceived(self, data: bytes, address) -> None:
        self.stats.messages_in += 1
        if len(data) > self.settings.max_datagram:
            self.drop("oversize")
            return
        if self.forwarding is not None and self.forwarding.intercept(data, address):
            return  # its game runs on another node
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            self.drop("malformed")
            self.answer_error(address, len(data), "malformed_json", "not a JSON object")
            return
        if not isinstance(message, dict):
            self.drop("malformed")
            self.answer_error(address, len(data), "not_an_object", "not a JSON object")
            return
        command = message.get("command")
        handler = self.dispatch.get(command) if isinstance(command, str) else None
        if handler is None:
            self.drop("unknown_command")
            self.answer_error(address, len(data), "unknown_command",
                              "command is connect, game_flux, ack or forfeit")
            return
        try:
            handler(message, address, len(data))
        except Exception:
            log_failure(log, "blockattack: {command} from {address} failed", command=command,
                        address=address)
            self.drop("internal")

    # -- pairing ----------------------------------------------------------------------------------

    def structure(self, cls, message: dict, address, size: int):
        """The typed datagram, or None once a bad one is dropped, counted and answered."""
        try:
            return messages.structure(cls, message)
        except messages.BadDatagram as exc:
            self.drop(exc.code)
            self.answer_error(address, size, exc.code, exc.message)
            return None

    def on_connect(self, message: dict, address, size: int) -> None:
        connect = self.structure(messages.Connect, message, address, size)
        if connect is None:
            return
        me, opponent = connect.player, connect.opponent
        try:
            check_name(me)
            check_name(opponent)
        except AuthError as exc:
            self.drop("bad_connect")
            self.answer_error(address, size, "bad_connect", exc.message)
            return
        key, other_key = me.casefold(), opponent.casefold()
        if self.draining and key not in self.game_of:
            self.drop("server_closing")
            self.answer_error(address, size, "server_closing", "the server is shutting down")
            return
        if key == other_key:
            self.drop("bad_connect")
            self.answer_error(address, size, "bad_connect", "you cannot play yourself")
            return
        game = self.game_of.get(key)
        if game is not None:
            player = game_name_of(game, key)
            if game.addresses.get(player) == address:  # a repeated connect: once a second
                if self.now() - game.resent_at.get(player, float("-inf")) >= START_RESEND:
                    game.resent_at[player] = self.now()
                    self.resend_for(game, player)
            else:
                self.drop("name_in_game")
                self.answer_error(address, size, "name_in_game", "this name is in a game")
            return
        if key in self.pairing:
            return  # being paired right now; game_start follows
        held = self.waiting.get(key)
        if held is not None and held.address[0] != address[0]:
            # nobody takes a waiting player's seat from another host (the same host on a
            # new port is the client restarted, or its NAT mapping changed)
            self.drop("name_waiting")
            self.answer_error(address, size, "name_waiting",
                              "this name is waiting for its opponent from another address")
            return
        if held is None and len(self.waiting) >= self.settings.max_waiting:
            self.drop("busy")
            self.answer_error(address, size, "busy", "too many players waiting; try again")
            return
        self.waiting[key] = Waiting(me, opponent, address, self.now(), size)
        partner = self.waiting.get(other_key)
        if partner is not None and partner.opponent.casefold() == key:
            del self.waiting[key], self.waiting[other_key]
            if self.forwarding is not None:  # both here: neither waits in the cluster
                self.forwarding.leave(partner)
                self.forwarding.leave(Waiting(me, opponent, address, self.now(), size))
            self.pairing.update((key, other_key))
            d = self.pair(partner, Waiting(me, opponent, address, self.now(), size))
            d.addBoth(lambda result: (self.pairing.difference_update((key, other_key)),
                                      result)[1])
            return
        if self.forwarding is not None:  # the opponent may wait on another node
            self.seek_elsewhere(self.waiting[key])
        # no bigger than the connect (it may be forged): without the timestamp if need be
        for reply in (messages.waiting(opponent, self.timestamp()), messages.waiting(opponent)):
            if len(encode(reply)) <= size:
                self.send(reply, address)
                break

    def seek_elsewhere(self, entry: Waiting) -> None:
        """Pair with an opponent waiting on another node; the game then runs here."""
        key, other_key = entry.name.casefold(), entry.opponent.casefold()

        def found(result):
            if result is None or self.waiting.get(key) is None or key in self.pairing:
                return
            other, address = result
            mine = self.waiting.pop(key)
            remote = Waiting(other["name"], other["opponent"], address, other["since"],
                             other["size"])
            first, second = sorted((remote, mine), key=lambda w: w.since)
            self.pairing.update((key, other_key))
            d = self.pair(first, second)
            d.addBoth(lambda r: (self.pairing.difference_update((key, other_key)), r)[1])

        d = self.forwarding.seek(entry)
        d.addCallback(found)
        d.addErrback(lambda f: None if f.check(ClusterUnavailable) else log_failure(
            log, "blockattack: pairing across the cluster failed", f))

    def waiting_taken(self, address) -> None:
        """This node's waiting player was paired by another node (its game runs there)."""
        for key, entry in list(self.waiting.items()):
            if entry.address == address:
                del self.waiting[key]

    @defer.inlineCallbacks
    def pair(self, first: Waiting, second: Waiting):
        try:
            accounts = {}
            for entry in (first, second):
                accounts[entry.name] = yield self.account_for(entry.name)
        except AuthError as exc:
            for entry in (first, second):
                self.answer_error(entry.address, entry.size, exc.code, exc.message)
            return
        except DatabaseUnavailable:
            # not paired: their repeated connects pair them once the database is back
            for entry in (first, second):
                self.drop("unavailable")
                self.answer_error(entry.address, entry.size, "unavailable", UNAVAILABLE)
            return
        name = "ba-" + secrets.token_hex(6)
        duel = rules.Duel((first.name, second.name), self.new_seed(), self.now(),
                          length=self.settings.game_seconds,
                          silence_timeout=self.settings.silence_timeout,
                          power_every=self.settings.power_every)
        game = Game(name, duel, {first.name: first.address, second.name: second.address},
                    accounts)
        if self.draining:  # the server began to stop while the accounts were read
            for entry in (first, second):
                self.answer_error(entry.address, entry.size, "server_closing",
                                  "the server is shutting down")
            return
        self.games[name] = game
        for entry in (first, second):
            self.game_of[entry.name.casefold()] = game
            self.core.presence.arrived(accounts[entry.name].id, GAME)
        log.info("blockattack: game {game} {one} vs {two}", game=name, one=first.name,
                 two=second.name)
        self.send_starts(game)

    @defer.inlineCallbacks
    def account_for(self, name: str):
        """The guest account a name plays as (created on first use); registered names
        of the other games are reserved for their owners."""
        accounts = self.core.accounts
        account = yield accounts.find_account(name)
        if account is None:
            try:
                account = yield accounts.guest(name)
            except AuthError:
                account = yield accounts.find_account(name)
        if account is None or not account.is_guest:
            raise AuthError("name_reserved", "%r is a registered account's name" % name)
        return account

    def send_starts(self, game: Game) -> None:
        game.start_tries += 1
        game.next_start = self.now() + min(START_RESEND * 2 ** (game.start_tries - 1),
                                           START_RESEND_MAX)
        for player in game.duel.names:
            if player not in game.flux_seen:
                self.send(self.start_message(game, player), game.addresses[player])

    def start_message(self, game: Game, player: str) -> dict:
        return messages.game_start(self.timestamp(), game.name, game.duel, player,
                                   self.now())

    def resend_for(self, game: Game, player: str) -> None:
        address = game.addresses[player]
        if game.end_message is not None:
            self.send(dict(game.end_message, timestamp=self.timestamp()), address)
        elif not game.duel.finished:
            self.send(self.start_message(game, player), address)

    # -- playing ---------------------------------------------------------------------------------

    def bound_game(self, message: dict, address, size: int):
        """The game a datagram names and the player bound to its source address; routed
        before the rest is read, so a stranger is never answered."""
        name = message.get("game_name")
        game = self.games.get(name) if type(name) is str else None
        if game is None:
            self.drop("unknown_game")
            self.answer_error(address, size, "unknown_game", "no such game")
            return None, None
        player = game.player_at(address)
        if player is None:
            self.drop("wrong_address")  # spoofed, or a stranger: never answered
            return None, None
        return game, player

    def on_flux(self, message: dict, address, size: int) -> None:
        game, player = self.bound_game(message, address, size)
        if game is None:
            return
        flux = self.structure(messages.GameFlux, message, address, size)
        if flux is None:
            return
        stamp = flux.timestamp
        if stamp <= game.last_timestamp.get(player, 0):
            self.drop("stale")  # late, duplicated or replayed
            return
        if game.duel.finished:
            game.last_timestamp[player] = stamp
            self.resend_for(game, player)
            return
        try:
            event = game.duel.report(player, self.now(), flux.user_blocks, flux.user_score,
                                     flux.pieces_placed, flux.power_used, flux.power_ack)
        except rules.RuleError as exc:
            self.drop(exc.code)
            self.answer_error(address, size, exc.code, str(exc))
            return
        game.last_timestamp[player] = stamp
        game.flux_seen.add(player)
        if event is not None:
            log.debug("blockattack: {by} used {power} on game {game}", by=player,
                      power=event.power, game=game.name)
        game.encoded_boards.pop(player, None)
        self.stats.messages_out += 1
        self.write(self.flux_reply(game, player), address)
        if game.duel.finished:
            self.end_game(game)

    def flux_reply(self, game: Game, player: str) -> bytes:
        other = game.duel.opponent(player).name
        return messages.game_flux(self.timestamp(), game.name, game.duel, player, self.now(),
                                  game.board_bytes(player), game.board_bytes(other))

    def on_ack(self, message: dict, address, size: int) -> None:
        """Acks are idempotent, so a late one is as good as a fresh one: not filtered."""
        game, player = self.bound_game(message, address, size)
        if game is None:
            return
        ack = self.structure(messages.Ack, message, address, size)
        if ack is None:
            return
        if ack.ack == "game_end":
            if game.end_message is not None:
                game.end_acked.add(player)
        else:
            incoming = game.duel.sides[player].incoming
            for event_id in ack.ids:
                incoming.pop(event_id, None)

    def on_forfeit(self, message: dict, address, size: int) -> None:
        """Applied like a report: only if newer than the player's last applied datagram
        (the reference client repeats it until game_end arrives)."""
        game, player = self.bound_game(message, address, size)
        if game is None:
            return
        forfeit = self.structure(messages.Forfeit, message, address, size)
        if forfeit is None:
            return
        if forfeit.timestamp <= game.last_timestamp.get(player, 0):
            self.drop("stale")
            return
        game.last_timestamp[player] = forfeit.timestamp
        if not game.duel.finished:
            game.duel.forfeit(player, self.now())
            self.end_game(game)
        else:
            self.resend_for(game, player)

    # -- time and the end ---------------------------------------------------------------------

    def on_timer(self) -> None:
        now = self.now()
        for key, entry in list(self.waiting.items()):
            if now - entry.since > self.settings.connect_timeout:  # nobody answered
                del self.waiting[key]
                if self.forwarding is not None:
                    self.forwarding.leave(entry)
        for game in list(self.games.values()):
            duel = game.duel
            if not duel.finished:
                duel.check_time(now)
                if duel.finished:
                    self.end_game(game)
                    continue
                if len(game.flux_seen) < 2 and now >= game.next_start:
                    if game.start_tries >= START_TRIES:
                        duel.finish(now, None, "no_show")
                        self.end_game(game)
                    else:
                        self.send_starts(game)
            elif game.end_message is not None:
                if now - game.end_since > END_LINGER or not game.end_pending():
                    self.forget(game)
                elif now >= game.next_end:
                    self.send_ends(game)

    def end_game(self, game: Game) -> defer.Deferred:
        """Record the result (before anyone is told), then send game_end until acked."""
        if game.ending:
            return defer.succeed(None)
        game.ending = True
        duel = game.duel
        ranked = duel.reason not in ("server_shutdown", "no_show")
        players = []
        for name in duel.names:
            outcome = ("draw" if duel.winner is None else
                       "win" if duel.winner == name else "loss")
            players.append(MatchPlayer(game.accounts[name].id, outcome,
                                       duel.sides[name].score,
                                       {"pieces_placed": duel.sides[name].pieces_placed}))
        result = MatchResult(GAME, players, duel.reason, ranked=ranked, key=game.key,
                             k_factor=self.settings.k_factor, started_at=iso(duel.started),
                             ended_at=iso(duel.ended),
                             details={"game_name": game.name, "scores": duel.scores(),
                                      "duration": round(duel.ended - duel.started, 3)})
        d = record_with_retries(self.core.ratings, result, self.clock, GAME)
        self.recording.add(d)

        def committed(recorded):
            game.end_message = messages.game_end(game.name, duel, {
                name: round(recorded.ratings[game.accounts[name].id].rating, 2)
                for name in duel.names})
            self.send_ends(game)

        def failed(failure):
            # the game is over either way: say so, and that it does not count
            log_failure(log, "blockattack: game {game} could not be recorded", failure,
                        game=game.name)
            game.end_message = messages.game_end(game.name, duel, None, saved=False)
            self.send_ends(game)

        d.addCallbacks(committed, failed)
        d.addBoth(lambda _: self.recording.discard(d))
        return d

    def send_ends(self, game: Game) -> None:
        """game_end to each player who has not acknowledged it; the repeats only to those
        who reported (an address never heard from after its connect may be forged)."""
        first = not game.end_since
        if first:
            game.end_since = self.now()
        game.next_end = self.now() + END_RESEND
        for name in game.duel.names:
            if (first or name in game.flux_seen) and name not in game.end_acked:
                self.send(dict(game.end_message, timestamp=self.timestamp()),
                          game.addresses[name])

    def players_lost(self, lost_address) -> None:
        """Players whose address `lost_address(address)` can no longer be reached (their
        node is gone): each game they play ends as if they had fallen silent (`timeout`,
        or `no_show` before both reported), now rather than after `silence_timeout`; no
        game_end is repeated to them."""
        for game in list(self.games.values()):
            lost = [name for name, address in game.addresses.items() if lost_address(address)]
            if not lost:
                continue
            game.end_acked.update(lost)
            if not game.duel.finished:
                log.info("blockattack: game {game} lost {names} (their node is gone)",
                         game=game.name, names=lost)
                game.duel.lost(lost[0], self.now())
                self.end_game(game)

    def forget(self, game: Game) -> None:
        if self.games.pop(game.name, None) is None:
            return
        if self.forwarding is not None:
            self.forwarding.release(game.addresses.values())
        for name in game.duel.names:
            if self.game_of.get(name.casefold()) is game:
                del self.game_of[name.casefold()]
            self.core.presence.left(game.accounts[name].id, GAME)


def game_name_of(game: Game, key: str) -> str:
    """The player's name as the game knows it, from its case-folded key."""
    for name in game.duel.names:
        if name.casefold() == key:
            return name
    raise KeyError(key)


def make_service(core, settings=None) -> service.IService:
    settings = settings if settings is not None else core.config.blockattack
    # stopped newest first, one after another: the game sends game_end to everyone
    # before the socket closes
    top = SequentialMultiService()
    top.setName(GAME)
    game = BlockattackService(core, settings, grace_period=core.config.shutdown.grace_period)
    listener = core.udp_listener(GAME, settings.listen, game)
    if listener is not None:
        listener.setServiceParent(top)
    game.setServiceParent(top)
    top.game = game
    core.live.register(GAME, GameMonitor(count=lambda: sum(
        1 for g in game.games.values() if not g.duel.finished)))
    return top
