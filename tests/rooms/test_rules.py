"""The lobby's rules, without any network: rooms, invites, host, start, relay phases."""

import itertools

import pytest

from gamed.rooms.rules import LOBBY, RELAY, STARTING, Lobby, Player, RoomError


def make_lobby(max_players=8):
    invites = ("invite%d" % n for n in itertools.count())
    broadcasts = ("b%d" % n for n in itertools.count())
    return Lobby(lambda: next(invites), lambda: next(broadcasts), max_players)


def players(*names):
    return [Player("id-" + name, name) for name in names]


def refused(code, func, *args):
    with pytest.raises(RoomError) as info:
        func(*args)
    assert info.value.code == code
    return info.value


def test_create_join_and_describe():
    lobby = make_lobby()
    ann, ben = players("ann", "ben")
    room = lobby.create(ann)
    assert room.invite == "invite0" and room.host is ann
    assert lobby.join(ben, "invite0") is room
    described = room.describe()
    assert [p["id"] for p in described] == ["id-ann", "id-ben"]
    assert described[0]["isHost"] is True and described[0]["host"] is True
    assert described[1]["isHost"] is False


def test_join_errors():
    lobby = make_lobby(max_players=2)
    ann, ben, ann2, cid = players("ann", "ben", "ANN", "cid")
    lobby.create(ann)
    refused("room_not_found", lobby.join, ben, "nope")
    refused("room_not_found", lobby.join, ben, None)
    refused("name_conflict", lobby.join, ann2, "invite0")
    lobby.join(ben, "invite0")
    refused("already_in_room", lobby.join, ben, "invite0")
    refused("room_is_full", lobby.join, cid, "invite0")
    refused("already_in_room", lobby.create, ann)


def test_start_rules():
    lobby = make_lobby()
    ann, ben, cid = players("ann", "ben", "cid")
    refused("not_in_room", lobby.start, ann)
    room = lobby.create(ann)
    refused("not_enough_players", lobby.start, ann)
    lobby.join(ben, room.invite)
    refused("not_host", lobby.start, ben)
    refused("unsupported_connection_type", lobby.start, ann, "peer_to_peer")
    assert lobby.start(ann) is room and room.playing and room.broadcast_id == "b0"
    assert ann.phase == ben.phase == STARTING
    refused("already_playing", lobby.start, ann)
    refused("already_playing", lobby.join, cid, room.invite)


def test_ack_then_end_game_returns_to_the_lobby():
    lobby = make_lobby()
    ann, ben = players("ann", "ben")
    room = lobby.create(ann)
    lobby.join(ben, room.invite)
    refused("not_starting", lobby.acknowledge, ann)
    lobby.start(ann)
    lobby.acknowledge(ann)
    assert ann.phase == RELAY
    refused("not_starting", lobby.acknowledge, ann)
    lobby.end_game(ann)
    assert ann.phase == LOBBY and room.playing  # ben is still in the game
    refused("not_in_game", lobby.end_game, ann)
    lobby.end_game(ben)
    assert not room.playing
    lobby.start(ann)  # and again


def test_host_leaving_passes_the_host_and_the_last_closes_the_room():
    lobby = make_lobby()
    ann, ben, cid = players("ann", "ben", "cid")
    room = lobby.create(ann)
    lobby.join(ben, room.invite)
    lobby.join(cid, room.invite)
    departure = lobby.leave(ann)
    assert departure.new_host is ben and room.host is ben and not departure.room_closed
    assert [p.id for p in departure.remaining] == ["id-ben", "id-cid"]
    departure = lobby.leave(cid)
    assert departure.new_host is None
    departure = lobby.leave(ben)
    assert departure.room_closed and room.invite not in lobby.rooms
    refused("not_in_room", lobby.leave, ben)
    refused("room_not_found", lobby.join, ann, room.invite)


def test_a_game_ends_when_everyone_in_it_left():
    lobby = make_lobby()
    ann, ben, cid = players("ann", "ben", "cid")
    room = lobby.create(ann)
    lobby.join(ben, room.invite)
    lobby.start(ann)
    lobby.acknowledge(ann)
    lobby.acknowledge(ben)
    lobby.end_game(ann)
    departure = lobby.leave(ben)
    assert departure.was_playing and not room.playing  # only ann is left, in the lobby
    lobby.join(cid, room.invite)  # the room can be joined again
