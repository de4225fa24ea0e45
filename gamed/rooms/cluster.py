"""rooms across the nodes of a cluster: a room lives on the node where it was created
(its invite code is claimed there, in the cluster's directory); a player of another node
who joins it is tunnelled there for as long as its connection lasts.

On the player's node the connection forwards every frame it receives to the room's node
(in order, on the bus) and writes what comes back; on the room's node a `RoomsConnection`
serves the player through a `BusChannel`, so the lobby, the relay (`sender` stamped by the
server), the control frames and the 64-frame queue before the ack are the very same code.
The player's own node still applies its connection's limits (rate, line length, idle,
send buffer: a reader that stops reading is dropped where its socket is).
"""

from __future__ import annotations

import secrets
from typing import Optional

from twisted.logger import Logger

from gamed.cluster.interface import ClusterUnavailable
from gamed.core.channel import encode

log = Logger(namespace="gamed.rooms")

KIND = "rooms"


class BusChannel:
    """The Channel of a player served here whose socket is on another node."""

    transport = "bus"

    def __init__(self, tunnels: "RoomsTunnels", node: str, tunnel_id: str, peer: str):
        self.tunnels = tunnels
        self.node = node
        self.tunnel_id = tunnel_id
        self.peer = "%s via %s" % (peer, node)
        self.handler = None

    def send(self, message: dict) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        self.tunnels.bus.publish("rooms.out", {"c": self.tunnel_id, "x": text}, [self.node])

    def send_prepared(self, frame) -> None:
        self.send_text(frame.text)

    def close(self, reason: str = "") -> None:
        self.tunnels.bus.publish("rooms.kill", {"c": self.tunnel_id, "r": reason}, [self.node])

    def buffered(self) -> int:
        return 0  # the socket's buffer is watched on its own node

    def refuse(self, problem) -> None:
        self.handler.frame_refused(problem)


class Tunnel:
    """On the player's node: where its frames go (buffered until the room's node has it)."""

    def __init__(self, tunnels: "RoomsTunnels", tunnel_id: str):
        self.tunnels = tunnels
        self.id = tunnel_id
        self.node: Optional[str] = None
        self.waiting: list = []
        self.delivered = 0  # frames written to the client (kept_alive)

    def forward(self, text: str) -> None:
        if self.node is None:
            self.waiting.append(text)
        else:
            self.tunnels.bus.publish("rooms.in", {"c": self.id, "x": text}, [self.node])


class RoomsTunnels:
    def __init__(self, rooms, cluster):
        self.rooms = rooms
        self.node = cluster.node
        self.bus = cluster.bus
        self.directory = cluster.directory
        self.outgoing: dict = {}  # tunnel id -> RoomsConnection here (its room elsewhere)
        self.incoming: dict = {}  # (node, tunnel id) -> RoomsConnection served here
        #: with workers: hands a connection to the room's worker (gamed/rooms/handoff.py)
        self.handoff = None
        for topic, handler in (("rooms.open", self._open), ("rooms.in", self._in),
                               ("rooms.close", self._close), ("rooms.out", self._out),
                               ("rooms.kill", self._kill)):
            self.bus.subscribe(topic, handler)
        cluster.on_node_gone(self.node_gone)

    def node_gone(self, node: str) -> None:
        """`node` is gone: its players in rooms here leave them (the others are told as
        when a member disconnects), and this node's players in its rooms are disconnected
        (their room is gone with it)."""
        for key in [key for key in self.incoming if key[0] == node]:
            handler = self.incoming.pop(key, None)
            if handler is not None:
                handler.connection_lost("its server went away")
        for connection in list(self.outgoing.values()):
            tunnel = connection.tunnel
            if tunnel is not None and tunnel.node == node:
                connection.channel.close("the room's server went away")

    # -- the room's node ----------------------------------------------------------------------

    def created(self, invite: str):
        """Claim the code; fires once it is claimed (or could not be: the room still
        works on this node)."""
        return self.directory.claim(KIND, invite).addErrback(self._failed,
                                                             "claiming an invite")

    def closed(self, invite: str) -> None:
        self.directory.release(KIND, invite).addErrback(self._failed, "releasing an invite")

    def _failed(self, reason, what: str) -> None:
        if not reason.check(ClusterUnavailable):
            log.warn("rooms: {what} failed: {error}", what=what, error=reason.getErrorMessage())

    def _open(self, message: dict, sender: str) -> None:
        from gamed.rooms.messages import sender_prefix
        from gamed.rooms.rules import Player

        handler = self.rooms.handler()
        channel = BusChannel(self, sender, message["c"], message.get("peer", "?"))
        channel.handler = handler
        handler.connection_made(channel)
        profile = message["p"]
        handler.player = Player(profile["id"], profile["username"], profile["avatar"],
                                profile["color"], profile["border_color"], link=handler)
        handler.prefix = sender_prefix(profile["id"])
        self.incoming[sender, message["c"]] = handler
        handler.message_received(message["j"])

    def _in(self, message: dict, sender: str) -> None:
        handler = self.incoming.get((sender, message["c"]))
        if handler is not None:
            handler.text_received(message["x"])

    def _close(self, message: dict, sender: str) -> None:
        handler = self.incoming.pop((sender, message["c"]), None)
        if handler is not None:
            handler.connection_lost(message.get("r") or "disconnected")

    # -- the player's node ---------------------------------------------------------------------

    def join_elsewhere(self, connection, request: dict) -> None:
        """room_join with an invite unknown here: ask the directory where the room is;
        the connection's frames wait meanwhile (their order is kept)."""
        from gamed.rooms.messages import invite_of

        tunnel = connection.tunnel = Tunnel(self, secrets.token_hex(8))
        d = self.directory.lookup(KIND, invite_of(request))

        def found(node):
            if node is None or node == self.node:
                self._stay(connection, request)
                return
            if self.handoff is not None and self.handoff.give(  # a worker of this server
                    connection, node, request, lambda: tunnel_to(node)):
                return
            tunnel_to(node)

        def tunnel_to(node):
            tunnel.node = node
            self.outgoing[tunnel.id] = connection
            player = connection.player
            self.bus.publish("rooms.open", {"c": tunnel.id, "j": request,
                                            "peer": connection.channel.peer, "p": {
                                                "id": player.id, "username": player.username,
                                                "avatar": player.avatar, "color": player.color,
                                                "border_color": player.border_color}}, [node])
            waiting, tunnel.waiting = tunnel.waiting, []
            for text in waiting:
                tunnel.forward(text)
            log.info("rooms: {player_id} plays in a room of node {node}",
                     player_id=player.id, node=node)

        def failed(reason):
            reason.trap(ClusterUnavailable)
            self._stay(connection, request)

        d.addCallbacks(found, failed)

    def _stay(self, connection, request: dict) -> None:
        """No room elsewhere either: answered here (room_not_found), then what waited."""
        from gamed.rooms.messages import BadRequest, request_id_of
        from gamed.rooms.rules import RoomError

        waiting, connection.tunnel = connection.tunnel.waiting, None
        try:
            connection.join_here(request)
        except (BadRequest, RoomError) as exc:
            connection.refuse_request("room_join", request_id_of(request), exc.code,
                                      exc.message)
        for text in waiting:
            connection.text_received(text)

    def lost(self, connection, reason: str) -> None:
        tunnel = connection.tunnel
        if tunnel.node is not None and self.outgoing.pop(tunnel.id, None) is not None:
            self.bus.publish("rooms.close", {"c": tunnel.id, "r": reason}, [tunnel.node])

    def _connection(self, message: dict, sender: str):
        connection = self.outgoing.get(message["c"])
        if connection is None or connection.tunnel is None or connection.tunnel.node != sender:
            return None
        return connection

    def _out(self, message: dict, sender: str) -> None:
        connection = self._connection(message, sender)
        if connection is not None:
            connection.tunnel.delivered += 1
            connection.channel.send_text(message["x"])

    def _kill(self, message: dict, sender: str) -> None:
        connection = self._connection(message, sender)
        if connection is not None:
            connection.channel.close(message.get("r") or "closed by the room's node")
