"""One uttt client connection: requests decoded, served one at a time in order of
arrival, dispatched by type to the game, answered in the protocol's own shapes (the same
handler serves WebSocket and TCP JSON lines)."""

from __future__ import annotations

from collections import deque
from typing import Optional

from twisted.internet import defer
from twisted.logger import Logger

from gamed.cluster.interface import ClusterUnavailable
from gamed.core.accounts import UNAVAILABLE, AuthError
from gamed.core.channel import ConnectionHandler
from gamed.core.logs import log_failure
from gamed.store.database import DatabaseUnavailable
from gamed.store.uttt import GAME
from gamed.uttt import rules
from gamed.uttt.game import UtttGame
from gamed.uttt.live import Player
from gamed.uttt.messages import (MAX_PASSWORD_LENGTH, SESSION_REQUESTS, BadRequest,
                                 FriendsUpdate, LoginResponse, ReconnectResponse, Response,
                                 failure, frame, parse_request, player_name)

log = Logger(namespace="gamed.uttt")


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
        elif isinstance(exc, DatabaseUnavailable):
            self._refuse(kind, "unavailable", UNAVAILABLE)
        elif isinstance(exc, ClusterUnavailable):
            self._refuse(kind, "unavailable", "matching players is unavailable right now "
                                              "(the server is cut off from its cluster); "
                                              "try again shortly")
        else:
            if fail is not None:
                log_failure(log, "uttt: {kind} from {peer} failed", fail, kind=kind,
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
        yield game.refresh(self.player.id)
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
            opponent = yield game.seek(self, me)
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

    @defer.inlineCallbacks
    def _my_match(self, match_key: str):
        """The player's open match (read from the database again in a cluster when this
        node has not heard of it yet), or BadRequest."""
        match = self.game.find_match(match_key, self.player.id)
        if match is None and self.game.clustered:
            yield self.game.refresh(self.player.id)
            match = self.game.find_match(match_key, self.player.id)
        if match is None:
            raise BadRequest("no_such_match", "you have no open match %s" % match_key[:64])
        return match

    def on_move(self, request):
        match = self.game.find_match(request.id, self.player.id)
        if match is None and self.game.clustered:
            return self._my_match(request.id).addCallback(self._play, request)
        return self._play(match, request)

    def _play(self, match, request):
        if match is None:
            raise BadRequest("no_such_match", "you have no open match %s" % request.id[:64])
        move = rules.Move(request.sub_x, request.sub_y, request.x, request.y)
        try:
            return self.game.play(match, self.player, move)
        except rules.IllegalMove as exc:
            self._refuse("move", exc.code, exc.message, id=match.key)
            return None

    @defer.inlineCallbacks
    def on_end_match(self, request):
        match = yield self._my_match(request.id)
        yield self.game.leave(match, self.player)
        self.send(frame(Response(True, "match %s ended" % match.key), "end_match_response"))

    @defer.inlineCallbacks
    def on_match_states_request(self, request):
        game = self.game
        yield game.refresh(self.player.id)
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
