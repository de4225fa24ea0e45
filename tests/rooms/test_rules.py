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


def test_acting_outside_a_room_or_game_is_refused_and_changes_nothing():
    lobby = make_lobby()
    [ann] = players("ann")
    refused("not_in_room", lobby.leave, ann)
    refused("not_in_room", lobby.start, ann)
    refused("not_starting", lobby.acknowledge, ann)
    refused("not_in_game", lobby.end_game, ann)
    assert lobby.rooms == {} and ann.room is None and ann.phase == LOBBY


def test_a_player_leaving_before_the_ack_keeps_the_game_for_the_others():
    lobby = make_lobby()
    ann, ben, cid = players("ann", "ben", "cid")
    room = lobby.create(ann)
    lobby.join(ben, room.invite)
    lobby.join(cid, room.invite)
    lobby.start(ann)
    departure = lobby.leave(ann)  # the host leaves while everyone is starting
    assert departure.was_playing and departure.new_host is ben and room.playing
    assert ann.phase == LOBBY and ann.room is None
    lobby.acknowledge(ben)
    assert ben.phase == RELAY and cid.phase == STARTING


def test_invite_collisions_are_drawn_again():
    codes = iter(["same", "same", "other"])
    lobby = Lobby(lambda: next(codes), lambda: "b", 8)
    ann, ben = players("ann", "ben")
    assert lobby.create(ann).invite == "same"
    assert lobby.create(ben).invite == "other"


def test_changes_counter_moves_on_every_membership_or_phase_change():
    lobby = make_lobby()
    ann, ben = players("ann", "ben")
    room = lobby.create(ann)
    seen = [room.changes]
    for step in (lambda: lobby.join(ben, room.invite), lambda: lobby.start(ann),
                 lambda: lobby.acknowledge(ann), lambda: lobby.acknowledge(ben),
                 lambda: lobby.end_game(ann), lambda: lobby.leave(ben)):
        step()
        seen.append(room.changes)
    assert seen == sorted(set(seen)), seen


# ---------------------------------------------------------------------------------------
# any sequence of actions keeps the lobby consistent

from hypothesis import settings as hypothesis_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition,  # noqa: E402
                                 rule)

NAMES = ["ann", "Ann", "ben", "cid", "dee"]


class LobbyMachine(RuleBasedStateMachine):
    """Random players create, join, leave, start, ack and end games; refused actions must
    change nothing, and the invariants below hold after every step. Each rule mostly picks
    a player for whom the action makes sense (so deep states are reached), sometimes any
    player (so refusals are exercised)."""

    def __init__(self):
        super().__init__()
        self.lobby = make_lobby(max_players=3)
        self.players = [Player("id%d" % n, name) for n, name in enumerate(NAMES)]
        self.closed_invites = set()

    def pick(self, data, fits):
        candidates = [p for p in self.players if fits(p)]
        if not candidates or data.draw(st.integers(0, 4), label="any") == 0:
            candidates = self.players
        return data.draw(st.sampled_from(candidates), label="player")

    def snapshot(self):
        return ({invite: (room.host.id, [p.id for p in room.players], room.broadcast_id)
                 for invite, room in self.lobby.rooms.items()},
                [(p.room.invite if p.room else None, p.phase) for p in self.players])

    def attempt(self, action, *args):
        before = self.snapshot()
        try:
            return action(*args)
        except RoomError as exc:
            assert exc.code and exc.message
            assert self.snapshot() == before, "a refused %s changed the lobby" % exc.code
            return None

    @rule(data=st.data())
    def create(self, data):
        self.attempt(self.lobby.create, self.pick(data, lambda p: p.room is None))

    @precondition(lambda self: self.lobby.rooms)
    @rule(data=st.data())
    def join(self, data):
        invite = data.draw(st.sampled_from(sorted(self.lobby.rooms)), label="invite")
        player = self.pick(data, lambda p: p.room is None)
        room = self.attempt(self.lobby.join, player, invite)
        if room is not None:
            assert player in room.players and player.phase == LOBBY

    @rule(data=st.data())
    def join_closed_or_unknown(self, data):
        player = self.pick(data, lambda p: p.room is None)
        for invite in list(self.closed_invites) + ["never-issued"]:
            self.attempt(self.lobby.join, player, invite)

    @rule(data=st.data())
    def leave(self, data):
        player = self.pick(data, lambda p: p.room is not None)
        room = player.room
        was_host = room is not None and room.host is player
        departure = self.attempt(self.lobby.leave, player)
        if departure is None:
            return
        assert player.room is None and player not in room.players
        if departure.room_closed:
            self.closed_invites.add(room.invite)
            assert room.invite not in self.lobby.rooms
        else:
            assert (departure.new_host is not None) == was_host
            assert departure.new_host in (None, room.host)

    @rule(data=st.data())
    def start(self, data):
        player = self.pick(data, lambda p: p.room is not None and p.room.host is p)
        room = self.attempt(self.lobby.start, player)
        if room is not None:
            assert room.host is player and len(room.players) >= 2
            assert all(p.phase == STARTING for p in room.players)

    @rule(data=st.data())
    def acknowledge(self, data):
        player = self.pick(data, lambda p: p.phase == STARTING)
        if self.attempt(self.lobby.acknowledge, player) is not None:
            assert player.phase == RELAY

    @rule(data=st.data())
    def end_game(self, data):
        player = self.pick(data, lambda p: p.phase != LOBBY)
        if self.attempt(self.lobby.end_game, player) is not None:
            assert player.phase == LOBBY

    @invariant()
    def rooms_are_consistent(self):
        seen = set()
        for invite, room in self.lobby.rooms.items():
            assert room.invite == invite and invite not in self.closed_invites
            assert 1 <= len(room.players) <= self.lobby.max_players
            assert room.host in room.players
            names = [p.username.casefold() for p in room.players]
            assert len(names) == len(set(names))
            assert room.playing == any(p.phase != LOBBY for p in room.players)
            for player in room.players:
                assert player.room is room and player.id not in seen
                seen.add(player.id)
            assert sum(p.describe()["isHost"] for p in room.players) == 1
        for player in self.players:
            if player.id not in seen:
                assert player.room is None and player.phase == LOBBY


LobbyMachine.TestCase.settings = hypothesis_settings(max_examples=150, stateful_step_count=40,
                                                     deadline=None)
test_lobby_state_machine = LobbyMachine.TestCase
