"""rooms with `[server] workers`: a player who joins a room of another worker is handed
over there (its TCP connection itself, gamed/workers/handoff.py) instead of being
tunnelled through Redis, so every room's relay runs in one process.

Handed over: the player's profile and id (the `sender` the others know), the room_join
request, the frames that arrived while the room was looked up and the bytes of a line
not yet complete. The receiving worker serves the socket with a fresh `RoomsConnection`
in that state and answers the join. A JSON-lines connection with nothing unsent is
handed over; a WebSocket (its framing state lives in autobahn) or a connection with
output still queued keeps the tunnel, as between machines.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger(namespace="gamed.rooms")

KIND = "rooms"


class RoomsHandoff:
    def __init__(self, rooms, handoff, endpoints: dict):
        self.rooms = rooms
        self.handoff = handoff
        self.endpoints = endpoints  # core.endpoints: (service, transport) -> StreamEndpoint
        handoff.register(KIND, self.taken)

    def give(self, connection, node: str, request: dict, fallback) -> bool:
        """Hand `connection` to worker `node` for its room_join `request`; False when it
        cannot be (the caller tunnels it). `fallback()` tunnels it after a failed try."""
        channel = connection.channel
        lines = self.handoff.lines_connection(channel, node)
        if lines is None:
            return False
        tcp, proto = lines
        player = connection.player
        channel.closed = True  # nothing more is written here: the socket is leaving
        header = {"join": request, "waiting": list(connection.tunnel.waiting),
                  "rest": proto._buffer.decode("latin-1"), "profile": {
                      "id": player.id, "username": player.username, "avatar": player.avatar,
                      "color": player.color, "border_color": player.border_color}}
        d = self.handoff.give(node, tcp, KIND, header)

        def given(_):
            log.info("rooms: {player_id} handed over to worker {node}", player_id=player.id,
                     node=node)

        def failed(reason):
            log.warn("rooms: handing {player_id} over to {node} failed ({error}); tunnelled",
                     player_id=player.id, node=node, error=reason.getErrorMessage())
            channel.closed = False
            tcp.startReading()
            fallback()

        d.addCallbacks(given, failed)
        return True

    def taken(self, adopt, header: dict) -> None:
        from gamed.core.lines import JsonLinesFactory
        from gamed.rooms.messages import sender_prefix
        from gamed.rooms.rules import Player

        proto = adopt(JsonLinesFactory(self.endpoints[("rooms", "lines")]))
        connection = proto.connection
        if connection is None:  # refused (server full): the client was told
            return
        handler = connection.handler
        profile = header["profile"]
        handler.player = Player(profile["id"], profile["username"], profile["avatar"],
                                profile["color"], profile["border_color"], link=handler)
        handler.prefix = sender_prefix(profile["id"])
        handler.message_received(header["join"])
        for text in header["waiting"]:
            connection.frame_received(text)
        if header["rest"]:
            proto.dataReceived(header["rest"].encode("latin-1"))
