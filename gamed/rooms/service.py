"""The rooms service: the lobby over WebSocket and TCP lines, then the raw relay.

`RoomsService` owns the `Lobby` (pure state) and numbers every server message;
`RoomsConnection` is the per-connection handler. Until a player acknowledges
`event_room_start` its frames are lobby requests (JSON, dispatched by type); after the
ack every frame not starting with `#` is relayed to the room's other players with
`"sender"` spliced in as the first field (the frame is never decoded), built once for
all peers. Frames for a peer that has not acked yet are queued, up to a limit.
"""

from __future__ import annotations

import json
import secrets
from typing import Optional

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from gamed.core.channel import BadFrame, ConnectionHandler, PreparedText, encode
from gamed.core.live import GameMonitor
from gamed.rooms.messages import (BadRequest, connection_type_of, error, invite_of,
                                  is_blank, login_details, refusal, request_id_of, response,
                                  sender_prefix, with_sender)
from gamed.rooms.cluster import RoomsTunnels
from gamed.rooms.rules import LOBBY, RELAY, STARTING, Lobby, Player, RoomError
from gamed.rooms.settings import RoomsSettings

log = Logger(namespace="gamed.rooms")

#: told to start or relaying: the real client shows its game screen from the moment it
#: reads event_room_start, so from then on it hears only the relay's words (`#...`)
IN_GAME = (STARTING, RELAY)

SERVER_CLOSING = "the server is shutting down: try again in a moment"


#: requests whose refusal leaves the real client on its login form, logged in
ROOM_REQUESTS = frozenset({"room_create", "room_join"})

class RoomsService(service.Service):
    name = "rooms"

    def __init__(self, settings: RoomsSettings, metrics=None,
                 new_token=secrets.token_urlsafe, clock=None, drain_linger: float = 0.0,
                 cluster=None):
        self.settings = settings
        #: in a cluster: rooms of other nodes reached through tunnels (rooms/cluster.py)
        self.tunnels = (RoomsTunnels(self, cluster)
                        if cluster is not None and cluster.clustered else None)
        self.clock = clock
        #: seconds a player in no room is kept open on shutdown (see stopService)
        self.drain_linger = drain_linger if clock is not None else 0.0
        # invite codes: 12 random bytes = 96 bits, URL-safe
        self.lobby = Lobby(lambda: new_token(12), lambda: new_token(9), settings.max_players)
        self.connections: set = set()
        self.message_id = 0
        self.draining = False
        if metrics is not None:
            metrics.gauge("rooms_open", "Open rooms").set_function(lambda: len(self.lobby.rooms))
            metrics.gauge("rooms_players", "Players logged in to the rooms lobby").set_function(
                lambda: sum(1 for c in self.connections if c.player is not None))

    def next_id(self) -> int:
        self.message_id += 1
        return self.message_id

    def handler(self) -> "RoomsConnection":
        return RoomsConnection(self)

    def new_player_id(self) -> str:
        return secrets.token_hex(6)

    def stopService(self):
        """Drain: tell every player in its current phase's words, then close. A player in
        no room (the real client's login form, the one screen where it shows a server's
        reason) is kept open `drain_linger` seconds: a request it sends meanwhile, or had
        on its way, is answered `result: "server_closing"` before the close."""
        service.Service.stopService(self)
        self.draining = True
        lingering = [connection for connection in list(self.connections)
                     if connection.server_closing(self.drain_linger > 0)]
        if not lingering:
            return None

        def close_the_rest():
            for connection in lingering:
                connection.channel.close("server shutdown")

        return task.deferLater(self.clock, self.drain_linger, close_the_rest)


class RoomsConnection(ConnectionHandler):
    """One client connection: logged-out, in the lobby, starting, or relaying."""

    def __init__(self, rooms: RoomsService):
        self.rooms = rooms
        self.player: Optional[Player] = None
        #: set while this connection plays in a room of another node (see rooms/cluster.py)
        self.tunnel = None
        self.prefix = ""
        self.pending: list = []  # (sender id, PreparedText) queued until our ack
        #: dropped for a full queue, waiting for the transport to report the close
        self.dropped = False
        #: told the server is shutting down, kept open for the drain's linger
        self.closing = False
        #: a refused room_create/room_join was the last request: login may come again
        self.may_login_again = False
        # the relay's targets, rebuilt when the room changes: (room, room.changes)
        self._targets_of = None
        self._sends: list = []
        self._starting: list = []
        #: the room's relayed-frame count at the last idle check (see kept_alive)
        self._relayed_seen = 0
        self.dispatch = {
            "login": self.on_login,
            "room_create": self.on_create,
            "room_join": self.on_join,
            "room_leave": self.on_leave,
            "room_start": self.on_start,
            "event_room_start_ack": self.on_ack,
            "event_room_start_acknowledge": self.on_ack,
        }

    # -- connection life ----------------------------------------------------------------------

    def connection_made(self, channel):
        super().connection_made(channel)
        self.rooms.connections.add(self)

    def connection_lost(self, reason: str):
        self.rooms.connections.discard(self)
        if self.tunnel is not None:
            self.rooms.tunnels.lost(self, reason or "disconnected")
            self.player = None
            return
        if self.player is not None and self.player.room is not None:
            self.leave_room(reason or "disconnected")
        self.player = None

    def server_closing(self, linger: bool) -> bool:
        """Tell this player the server is going; True if the connection is kept open for
        the drain's linger (a player in no room), else it is closed now."""
        player = self.player
        if player is not None and player.phase in IN_GAME:
            self.control({"type": "server_closing", "reason": SERVER_CLOSING})
        else:
            self.send_event("event_server_closing", reason=SERVER_CLOSING)
        if linger and (player is None or player.room is None):
            self.closing = True
            return True
        self.channel.close("server shutdown")
        return False

    # -- sending ------------------------------------------------------------------------------

    def send_event(self, kind: str, **fields):
        message = {"id": self.rooms.next_id(), "type": kind}
        message.update(fields)
        self.channel.send(message)

    def reply(self, kind: str, request_id, **fields):
        self.channel.send(response(self.rooms.next_id(), kind, request_id, **fields))

    def error_message(self, code, detail, request):
        origin = request_id_of(request) if isinstance(request, dict) else None
        return error(self.rooms.next_id(), origin, code, detail)

    def fail(self, frame: dict, code: str, text: str):
        """A frame that is no request (unknown type, no id): the `error` frame."""
        log.debug("rooms: refused a frame from {peer}: {code}", peer=self.channel.peer,
                  code=code)
        self.channel.send(self.error_message(code, text, frame))

    def refuse_request(self, kind: str, request_id, code: str, text: str):
        """A refused request gets its own `<type>_response`, the code in `result`."""
        if kind in ROOM_REQUESTS:
            self.may_login_again = True
        elif kind != "login":  # a refused login (a bad name) may be tried again
            self.may_login_again = False
        log.debug("rooms: refused {kind} from {peer}: {code}", kind=kind,
                  peer=self.channel.peer, code=code)
        self.channel.send(refusal(self.rooms.next_id(), kind, request_id, code, text))

    def control(self, message: dict):
        message = dict(message, id=self.rooms.next_id())
        self.channel.send_text("#" + encode(message))

    def frame_refused(self, problem: BadFrame) -> None:
        """In the relay a refusal (rate, size, shape) is a control frame: game frames and
        server errors must not be confused by a relaying client."""
        if self.player is not None and self.player.phase == RELAY:
            self.control({"type": "error", "originId": None, "error": problem.code,
                          "errorMessage": problem.detail})
        else:
            super().frame_refused(problem)

    # -- incoming ---------------------------------------------------------------------------

    def text_received(self, text: str):
        if self.tunnel is not None:  # its room is on another node: everything goes there
            self.tunnel.forward(text)
            return
        player = self.player
        if player is not None and player.phase == RELAY:
            if text[:1] == "#":
                self._relayed_seen = player.room.relayed
                self.control_received(text[1:])
            else:
                self.relay(player, text)
            return
        if text[:1] == "#":
            self.control_received(text[1:])
            return
        if is_blank(text):
            return  # a keep-alive: it counted as activity, it needs no answer
        super().text_received(text)

    def kept_alive(self) -> bool:
        """A relay player who only listens is in use while its room relays frames to it:
        true if a frame reached it since it was last active or last asked (a dead peer is
        still found: writes to it fail, or its send buffer fills)."""
        if self.tunnel is not None:
            seen, self._relayed_seen = self._relayed_seen, self.tunnel.delivered
            return self.tunnel.delivered != seen
        player = self.player
        if player is None or player.phase != RELAY:
            return False
        seen, self._relayed_seen = self._relayed_seen, player.room.relayed
        return player.room.relayed != seen

    def message_received(self, message: dict):
        kind = message.get("type")
        handler = self.dispatch.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.fail(message, "unknown_type", "unknown message type %r" % (kind,))
            return
        request_id = request_id_of(message)
        if request_id is None:
            self.fail(message, "missing_id",
                      "a request needs an id (a number or a string) to be answered")
            return
        if self.closing:
            self.refuse_request(kind, request_id, "server_closing", SERVER_CLOSING)
            self.channel.close("server shutdown")
            return
        if self.player is None and kind != "login":
            self.refuse_request(kind, request_id, "not_logged_in", "log in first")
            return
        try:
            handler(message)
        except (BadRequest, RoomError) as exc:
            self.refuse_request(kind, request_id, exc.code, exc.message)
        else:
            self.may_login_again = False  # (a room request answered later may set it)

    # -- lobby --------------------------------------------------------------------------------

    def on_login(self, request: dict):
        """Once logged in, a connection logs in again only right after a refused
        room_create or room_join: the real client, refused a room (name_conflict), lets its
        user change the profile and sends login again on the same socket. Otherwise the
        seed's rule holds: a second login is refused."""
        player = self.player
        if player is not None and (player.room is not None or not self.may_login_again):
            raise BadRequest("already_logged_in",
                             "you are logged in: a second login is accepted only after a "
                             "refused room_create or room_join, outside a room")
        details = login_details(request)
        if player is None:
            player_id = self.rooms.new_player_id()
            self.player = Player(player_id, details.username, details.avatar, details.color,
                                 details.border_color, link=self)
            self.prefix = sender_prefix(player_id)
        else:  # after a refused room request (see above): the profile changes
            player_id = player.id
            player.username, player.avatar = details.username, details.avatar
            player.color, player.border_color = details.color, details.border_color
        log.info("rooms: {name} logged in as {player_id} from {peer}", name=details.username,
                 player_id=player_id, peer=self.channel.peer)
        self.reply("login_response", request.get("id"), playerId=player_id,
                   player=self.player.describe())

    def on_create(self, request: dict):
        room = self.rooms.lobby.create(self.player)

        def reply(_=None):
            self.reply("room_create_response", request.get("id"), players=room.describe(),
                       inviteId=room.invite)

        if self.rooms.tunnels is not None:  # the code works on every node once answered
            self.rooms.tunnels.created(room.invite).addCallback(reply)
        else:
            reply()

    def on_join(self, request: dict):
        tunnels = self.rooms.tunnels
        if (tunnels is not None and self.player.room is None
                and invite_of(request) not in self.rooms.lobby.rooms):
            tunnels.join_elsewhere(self, request)  # the room may be on another node
            return
        self.join_here(request)

    def join_here(self, request: dict):
        room = self.rooms.lobby.join(self.player, invite_of(request))
        self.reply("room_join_response", request.get("id"), players=room.describe(),
                   inviteId=room.invite)
        joined = self.player.describe()
        for other in room.others(self.player):
            other.link.send_event("event_player_joined", player=joined)

    def on_leave(self, request: dict):
        if self.player.room is None:
            raise RoomError("not_in_room", "you are not in a room")
        self.leave_room("left")
        self.reply("room_leave_response", request.get("id"))

    def leave_room(self, reason: str):
        player = self.player
        departure = self.rooms.lobby.leave(player)
        self.pending = []
        if departure.room_closed and self.rooms.tunnels is not None:
            self.rooms.tunnels.closed(departure.room.invite)
        fields = {"player": player.id, "reason": reason}
        if departure.new_host is not None:
            fields["newHost"] = departure.new_host.id
        for other in departure.remaining:
            if other.phase == RELAY:
                other.link.control(dict(fields, type="player_left"))
            elif other.phase == STARTING:
                # its client is on the game screen already: the notice follows the frames
                # this player sent before it left, on the peer's ack
                other.link.queue_control(player.id, dict(fields, type="player_left"))
            else:
                other.link.send_event("event_player_left", **fields)

    def queue_control(self, sender_id: str, message: dict):
        """A control frame for this player once it acks (after the frames queued before)."""
        if not self.dropped:
            message = dict(message, id=self.rooms.next_id())
            self.pending.append((sender_id, PreparedText("#" + encode(message))))

    def on_start(self, request: dict):
        room = self.rooms.lobby.start(self.player, connection_type_of(request))
        for member in room.players:
            member.link.pending = []
            member.link.send_event("event_room_start", connectionType=room.connection_type,
                                   broadcastId=room.broadcast_id,
                                   players=room.describe())

    def on_ack(self, request: dict):
        if self.dropped:
            return
        room = self.rooms.lobby.acknowledge(self.player)
        self._relayed_seen = room.relayed
        queued, self.pending = self.pending, []
        for _, frame in queued:
            self.channel.send_prepared(frame)

    # -- relay --------------------------------------------------------------------------------

    def relay(self, player: Player, text: str):
        out = with_sender(self.prefix, text)
        if out is None:
            if is_blank(text):
                self._relayed_seen = player.room.relayed
                return  # a keep-alive
            self.channel.refuse(BadFrame("not_an_object",
                                         "relay frames must be JSON objects ({...})"))
            return
        frame = PreparedText(out)
        room = player.room
        room.relayed += 1
        self._relayed_seen = room.relayed  # active itself: count what it receives from now
        if self._targets_of != (room, room.changes):
            self._rebuild_targets(player, room)
        for send in self._sends:
            send(frame)
        for link in self._starting:
            if link.dropped:
                continue  # closing; its departure reaches the room when the socket is gone
            if len(link.pending) >= self.rooms.settings.max_queued_frames:
                log.info("rooms: dropping {player_id}: {limit} frames queued before its ack",
                         player_id=link.player.id, limit=len(link.pending))
                link.pending = []
                link.dropped = True
                link.channel.close("relay_queue_full")
            else:
                link.pending.append((player.id, frame))

    def _rebuild_targets(self, player: Player, room) -> None:
        others = [p for p in room.players if p is not player]
        self._sends = [p.link.channel.send_prepared for p in others if p.phase == RELAY]
        self._starting = [p.link for p in others if p.phase == STARTING]
        self._targets_of = (room, room.changes)

    def control_received(self, text: str):
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            self.control({"type": "error", "originId": None, "error": "malformed_control",
                          "errorMessage": "a control frame is '#' then a JSON object"})
            return
        kind = message.get("type")
        if kind != "end_game":
            self.control({"type": "error", "originId": message.get("id"), "error": "unknown_type",
                          "errorMessage": "unknown control frame %r" % (kind,)})
            return
        if self.player is None:
            self.control({"type": "error", "originId": message.get("id"),
                          "error": "not_logged_in", "errorMessage": "log in first"})
            return
        player = self.player
        if player.room is not None and player.phase == LOBBY:
            # out of the game already: the same answer again, so that a client waiting
            # for its end_game_ack to leave the game screen is never left waiting
            self.control({"type": "end_game_ack", "requestId": message.get("id"),
                          "players": player.room.describe()})
            return
        try:
            room = self.rooms.lobby.end_game(player)
        except RoomError as exc:
            self.control({"type": "error", "originId": message.get("id"), "error": exc.code,
                          "errorMessage": exc.message})
            return
        self.pending = []
        self.control({"type": "end_game_ack", "requestId": message.get("id"),
                      "players": room.describe()})
        notice = {"type": "player_left", "player": player.id, "reason": "end_game"}
        for other in room.others(player):  # the game goes on without this player
            if other.phase == RELAY:
                other.link.control(notice)
            elif other.phase == STARTING:
                # after the frames it sent before it ended, in order, on the peer's ack
                other.link.queue_control(player.id, notice)

def make_service(core, settings: RoomsSettings = None) -> service.IService:
    settings = settings if settings is not None else core.config.rooms
    top = service.MultiService()
    # the linger ends within the daemon's grace period
    rooms = RoomsService(settings, core.metrics, clock=core.reactor,
                         drain_linger=min(settings.drain_linger,
                                          core.config.shutdown.grace_period),
                         cluster=getattr(core, "cluster", None))
    rooms.setServiceParent(top)
    if rooms.tunnels is not None and getattr(core, "handoff", None) is not None:
        from gamed.rooms.handoff import RoomsHandoff

        rooms.tunnels.handoff = RoomsHandoff(rooms, core.handoff, core.endpoints)
    core.live.register("rooms", GameMonitor(count=lambda: len(rooms.lobby.rooms)))
    for listener in (
            core.stream_listeners("rooms", settings.websocket, rooms.handler, settings,
                                  websocket=True),
            core.stream_listeners("rooms", settings.listen, rooms.handler, settings)):
        if listener is not None:
            listener.setServiceParent(top)
    return top
