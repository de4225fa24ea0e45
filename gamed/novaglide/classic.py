"""The classic listener: the original Novaglide desktop client, unchanged, on gamed.

The client speaks in strict lockstep (see `classic_wire`): one pickled request, then it
blocks until exactly one pickled reply arrives, with no timeout. So this wire never sends
anything unasked and answers every request exactly once:

- queries and login are answered when their data is ready;
- a status packet or `ingame` input is answered after the next 60 Hz tick: with that tick's
  `game_state_1` during a match (so the client runs at the server's rate), once with the
  `end_game_state_1` when the match is over, and with `change_of_status` in a menu (the
  client polls every frame, uncapped: the tick paces it, never a refusal);
- a refusal (bad input, rate limit, not logged in) is a `change_of_status` naming it,
  because the client has no error packet and would wait forever for a reply.

`ClassicConnection` is a `NovaConnection` with these answers, so one match code serves both
wires: a classic player plays a JSON-lines player and each result is recorded once.
`ClassicProtocol` moves bytes: the greeting, the request reader, one request in flight.
"""

from __future__ import annotations

import functools

from twisted.internet import defer, protocol
from twisted.logger import Logger

from gamed.core.transport import (Connection, StreamEndpoint, accept_stream, direct_writer,
                                  peer_of)
from gamed.novaglide import classic_wire as wire
from gamed.novaglide.messages import parse_input
from gamed.novaglide.service import GAME, MatchEnd, NovaConnection, iso, winrate

log = Logger(namespace="gamed.novaglide.classic")

SERVER_FULL = b"The server is full, please try again later."
#: matches shown by the client's history table
HISTORY_ROWS = 10


class ClassicConnection(NovaConnection):
    """One original desktop client: the JSON handler's logic, answered in lockstep."""

    portable_states = False  # lockstep pickles: its matches run on its own node

    def __init__(self, game):
        super().__init__(game)
        self.awaiting_reply = False  # a request is waiting for its one reply
        self.held_end = None  # an end_game_state_1 that came between two requests
        self.ready = lambda: None  # the adapter's "send the next request in"
        self.dispatch.update({
            "get_elo": self.on_classic_elo,
            "get_winrate": self.on_classic_winrate,
            "get_match_history": self.on_classic_history,
            "game_history": self.on_classic_history,
            "get_challengers": self.on_classic_challengers,
            # the client's own status after queueing (capital W, its main.py)
            "Waiting_for_opponent": functools.partial(self.on_status, "waiting_for_opponent"),
        })
        self.public.add("Waiting_for_opponent")

    # -- lockstep ------------------------------------------------------------------------------

    def request_arrived(self) -> None:
        self.awaiting_reply = True

    def reply_payload(self, payload: bytes) -> bool:
        """Answer the request in flight; False (nothing sent) when none is waiting."""
        if not self.awaiting_reply:
            return False
        self.awaiting_reply = False
        self.game.tick_waiters.discard(self)
        self.channel.send_bytes(payload)
        self.ready()
        return True

    def reply(self, flag: str, data) -> bool:
        return self.reply_payload(wire.reply_bytes(flag, data, self.stamp()))

    def stamp(self) -> str:
        return iso(self.game.now())

    def reply_status(self, message=None) -> bool:
        """change_of_status [the server's view, message, account id]."""
        account = self.account
        return self.reply("change_of_status", [
            self.game.status_of(self),
            message if message is not None else (account.name if account else "not logged in"),
            account.id if account else "unknown"])

    def wait_for_tick(self) -> None:
        self.game.tick_waiters.add(self)

    def after_tick(self) -> None:
        if not self.awaiting_reply:
            return
        if self.held_end is not None:
            payload, self.held_end = self.held_end, None
            self.reply_payload(payload)
            return
        match = self.game.match_of.get(self.account.id) if self.account else None
        if match is not None and match.ending:
            self.wait_for_tick()  # its result is being written: the end comes next
            return
        self.reply_status()

    # -- what the shared code sends --------------------------------------------------------------

    def send(self, flag: str, data: list, **extra) -> None:
        if not self.reply(flag, data):
            log.debug("novaglide classic: {flag} for {peer} dropped (nothing asked)",
                      flag=flag, peer=self.channel.peer)

    def fail(self, code: str, detail: str) -> None:
        # no error packet in this client: the status reply carries the reason
        self.reply_status(detail)

    def frame_refused(self, problem) -> None:
        self.reply_status(problem.detail)

    def send_state(self, match, side: int, stamp: str) -> None:
        if self.awaiting_reply:
            self.reply_payload(match.classic_states(stamp)[side - 1])

    def match_ended(self, ended: MatchEnd, side: int) -> None:
        """end_game_state_1 with each rating as it stood before the match, as whole
        numbers (the client computes and shows the change itself). A result that could not
        be saved still ends the client's match screen; the log and the API say it was not
        counted."""
        stats = ended.stats(lambda s: wire.whole(ended.before[s]))
        payload = wire.reply_bytes("end_game_state_1",
                                   wire.end_game_data(stats, ended.winner_name), self.stamp())
        if not self.reply_payload(payload):
            self.held_end = payload

    # -- requests ----------------------------------------------------------------------------------

    def on_login(self, data):
        """The client's back arrow returns to its login form without telling the server:
        a new login on this connection first logs the old account out (except during a
        match, which goes on)."""
        if self.account is not None and self.account.id not in self.game.match_of:
            self.game.disconnected(self)
            self.account = None
        return super().on_login(data)

    def on_queue(self, data):
        """PLAY while in a match (a client that logged in again within the rejoin grace)
        takes the player straight back into it: the reply is the next state, which the
        client's main loop starts the match screen with."""
        match = self.game.match_of.get(self.account.id)
        if (match is not None and not match.ending
                and match.links.get(match.side_of(self.account.id)) is self):
            self.wait_for_tick()
            return None
        return super().on_queue(data)

    def on_status(self, client_status, data):
        if client_status == "online" and self.account is not None:
            self.game.queue.remove(self.account.id)
        self.wait_for_tick()

    def on_ingame(self, data):
        if data == ["no_data"]:
            return self.on_status("ingame", data)
        match = self.game.match_of.get(self.account.id)
        if match is not None and not match.ending:
            side = match.side_of(self.account.id)
            if match.links.get(side) is self:
                try:
                    match.inputs[side] = parse_input(data)
                except ValueError as exc:
                    self.fail("bad_input", str(exc))
                    return None
        self.wait_for_tick()
        return None

    @defer.inlineCallbacks
    def on_classic_elo(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        ratings = self.game.core.ratings
        rating = yield ratings.get_rating(account.id, GAME)
        top = yield ratings.leaderboard(GAME, self.game.settings.challengers_rows)
        self.reply("client_elo", wire.elo_data(rating.rating, top[-1].rating if top else None))

    @defer.inlineCallbacks
    def on_classic_winrate(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        rating = yield self.game.core.ratings.get_rating(account.id, GAME)
        self.reply("winrate", [wire.whole(rating.winrate)])

    @defer.inlineCallbacks
    def on_classic_history(self, data):
        account = yield self._account_named(data)
        if account is None:
            return
        matches = yield self.game.core.ratings.matches(GAME, player_id=account.id,
                                                       limit=HISTORY_ROWS)
        # [solo rows, duo rows]: gamed has no 2v2 matches
        self.reply_payload(wire.fitted_reply(
            "match_history", matches, lambda rows: [[wire.history_row(m) for m in rows], []],
            self.stamp()))

    @defer.inlineCallbacks
    def on_classic_challengers(self, data):
        """The best rated players, as the original server's table (everyone, you too:
        the client numbers the rows as world ranks)."""
        rows = yield self.game.core.ratings.leaderboard(GAME, self.game.settings.challengers_rows)
        self.reply_payload(wire.fitted_reply(
            "challengers", [(row.name, winrate(row), row.rating) for row in rows],
            wire.challenger_rows, self.stamp()))


class ClassicProtocol(protocol.Protocol):
    """Bytes in and out for one classic client: greeting, requests one at a time."""

    def __init__(self, endpoint: StreamEndpoint, max_request: int):
        self.endpoint = endpoint
        self.reader = wire.RequestReader(max_request)
        self.connection: Connection | None = None
        self.handler: ClassicConnection | None = None
        self.pumping = False
        self.lost = False

    def connectionMade(self):
        endpoint = self.endpoint
        if not accept_stream(endpoint, self.transport, lambda: SERVER_FULL):
            return
        self.connection = Connection(endpoint, peer_of(self.transport),
                                     direct_writer(self.transport), self.transport.loseConnection,
                                     self.transport)
        self.handler = self.connection.handler
        self.handler.ready = self.pump
        self.connection.start()
        self.connection.send_bytes(wire.WELCOME)

    def dataReceived(self, data: bytes):
        connection = self.connection
        if connection is None or connection.closed:
            return
        self.reader.feed(data)
        if len(self.reader.buffer) > self.reader.max_request:  # more than one request ahead
            self.refuse(wire.RefusedRequest("request_too_large", "requests sent ahead of "
                                            "their replies exceed %d bytes"
                                            % self.reader.max_request))
            return
        self.pump()

    def pump(self) -> None:
        """Hand the next whole request to the handler, once the last one is answered."""
        if self.pumping or not self.reader.buffer:
            # a reply sent from inside the loop below (the loop goes on), or no request
            # waiting: the usual case after a reply (called 60 times a second a player)
            return
        self.pumping = True
        try:
            connection, handler = self.connection, self.handler
            while not connection.closed and not handler.awaiting_reply:
                try:
                    request = self.reader.next_request()
                    if request is None:
                        return
                except wire.RefusedRequest as refused:
                    self.refuse(refused)
                    return
                handler.request_arrived()
                admitted = connection.message_received({"flag": request.flag,
                                                        "data": request.data})
                if not admitted and handler.awaiting_reply and not connection.closed:
                    # over the rate again: still one reply, or this client waits forever
                    handler.fail("rate_limited", "too many messages: slow down")
        finally:
            self.pumping = False

    def refuse(self, refused: "wire.RefusedRequest") -> None:
        """A request that must not be used: counted, logged, its connection closed."""
        connection = self.connection
        self.endpoint.stats.error(refused.code)
        log.info("novaglide classic: refused a request from {peer}: {code} ({detail}); "
                 "closing", peer=connection.peer, code=refused.code, detail=refused.detail)
        self.reader.buffer.clear()
        connection.close(refused.code)

    def connectionLost(self, reason=protocol.connectionDone):
        if self.connection is not None and not self.lost:
            self.lost = True
            self.connection.stop(reason.getErrorMessage())


class ClassicFactory(protocol.Factory):
    def __init__(self, endpoint: StreamEndpoint, max_request: int):
        self.endpoint = endpoint
        self.max_request = max_request

    def buildProtocol(self, addr):
        proto = ClassicProtocol(self.endpoint, self.max_request)
        proto.factory = self
        return proto


def classic_listener(core, game, settings):
    """The [novaglide] classic_listen listener (None when it is empty)."""
    return core.stream_listener(
        GAME, "classic", settings.classic_listen, lambda: ClassicConnection(game), settings,
        lambda endpoint: ClassicFactory(endpoint, settings.classic_max_request))
