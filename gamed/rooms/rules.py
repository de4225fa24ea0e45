"""The rooms lobby as pure state: players, rooms, invite codes, host, start, relay phases.

No Twisted and no I/O: every operation checks the rules, changes the state, and returns
what happened (who must be told what); `gamed.rooms.service` turns that into messages.
Invite codes and ids come from functions passed in, so tests can fix them.
"""

from __future__ import annotations

from typing import Callable, Optional

import attrs

LOBBY, STARTING, RELAY = "lobby", "starting", "relay"


class RoomError(Exception):
    """A refused lobby action; `code` is the wire error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.define(eq=False)
class Player:
    id: str
    username: str
    avatar: int = 0
    color: int = 0
    border_color: int = 0
    room: Optional["Room"] = None
    #: LOBBY (in no game), STARTING (told to start, not yet acked), RELAY (acked)
    phase: str = LOBBY
    #: the service's handle on this player's connection (opaque here)
    link: object = attrs.field(default=None, repr=False)

    def describe(self) -> dict:
        """The PlayerObject of the wire (both the seed's `host` and the client's `isHost`)."""
        is_host = self.room is not None and self.room.host is self
        return {"id": self.id, "username": self.username, "avatar": self.avatar,
                "color": self.color, "border_color": self.border_color,
                "isHost": is_host, "host": is_host}


@attrs.define(eq=False)
class Room:
    invite: str
    host: Player
    players: list = attrs.Factory(list)
    #: set while a game runs (from room_start until every player is back or gone)
    broadcast_id: Optional[str] = None
    connection_type: str = "server_broadcast"
    #: bumped on every change of membership or phase (lets the relay cache its targets)
    changes: int = 0
    #: frames relayed in this room (a listener receiving them is not idle)
    relayed: int = 0

    @property
    def playing(self) -> bool:
        return self.broadcast_id is not None

    def others(self, player: Player) -> list:
        return [p for p in self.players if p is not player]

    def describe(self) -> list:
        return [p.describe() for p in self.players]


@attrs.frozen
class Departure:
    """A player left a room: who is left, and the new host if the host changed."""

    room: Room
    remaining: tuple
    new_host: Optional[Player]
    room_closed: bool
    was_playing: bool


CONNECTION_TYPES = ("server_broadcast",)


class Lobby:
    """All rooms of one server. Invite codes map to rooms; a room with nobody is gone."""

    def __init__(self, new_invite: Callable[[], str], new_broadcast_id: Callable[[], str],
                 max_players: int = 8):
        self.new_invite = new_invite
        self.new_broadcast_id = new_broadcast_id
        self.max_players = max_players
        self.rooms: dict[str, Room] = {}

    def create(self, player: Player) -> Room:
        if player.room is not None:
            raise RoomError("already_in_room", "leave your room before creating another")
        invite = self.new_invite()
        while invite in self.rooms:
            invite = self.new_invite()
        room = Room(invite, player, [player])
        self.rooms[invite] = room
        player.room = room
        player.phase = LOBBY
        return room

    def join(self, player: Player, invite) -> Room:
        if player.room is not None:
            raise RoomError("already_in_room", "leave your room before joining another")
        room = self.rooms.get(invite) if isinstance(invite, str) else None
        if room is None:
            raise RoomError("room_not_found", "no room has this invite (it may have closed)")
        if room.playing:
            raise RoomError("already_playing", "this room's game has started")
        if any(p.username.casefold() == player.username.casefold() for p in room.players):
            raise RoomError("name_conflict", "another player in this room has your name")
        if len(room.players) >= self.max_players:
            raise RoomError("room_is_full", "this room is full (%d players)" % self.max_players)
        room.players.append(player)
        player.room = room
        player.phase = LOBBY
        room.changes += 1
        return room

    def leave(self, player: Player) -> Departure:
        """Remove the player from its room (leave or disconnect)."""
        room = player.room
        if room is None:
            raise RoomError("not_in_room", "you are not in a room")
        was_playing = room.playing
        room.players.remove(player)
        player.room = None
        player.phase = LOBBY
        new_host = None
        closed = not room.players
        if closed:
            self.rooms.pop(room.invite, None)
        elif room.host is player:
            room.host = room.players[0]
            new_host = room.host
        if room.playing and not any(p.phase != LOBBY for p in room.players):
            room.broadcast_id = None  # nobody is in the game any more
        room.changes += 1
        return Departure(room, tuple(room.players), new_host, closed, was_playing)

    def start(self, player: Player, connection_type="server_broadcast") -> Room:
        room = player.room
        if room is None:
            raise RoomError("not_in_room", "create or join a room first")
        if room.host is not player:
            raise RoomError("not_host", "only the host can start the room")
        if room.playing:
            raise RoomError("already_playing", "the game has already started")
        if len(room.players) < 2:
            raise RoomError("not_enough_players", "a room needs at least 2 players to start")
        if connection_type not in CONNECTION_TYPES:
            raise RoomError("unsupported_connection_type",
                            "connectionType must be one of %s" % ", ".join(CONNECTION_TYPES))
        room.broadcast_id = self.new_broadcast_id()
        room.connection_type = connection_type
        for member in room.players:
            member.phase = STARTING
        room.changes += 1
        return room

    def acknowledge(self, player: Player) -> Room:
        room = player.room
        if room is None or player.phase != STARTING:
            raise RoomError("not_starting", "there is no room start to acknowledge")
        player.phase = RELAY
        room.changes += 1
        return room

    def end_game(self, player: Player) -> Room:
        """The player leaves the game and returns to the room's lobby."""
        room = player.room
        if room is None or player.phase == LOBBY:
            raise RoomError("not_in_game", "you are not in a game")
        player.phase = LOBBY
        if all(p.phase == LOBBY for p in room.players):
            room.broadcast_id = None
        room.changes += 1
        return room
