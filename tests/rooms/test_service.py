"""The rooms handler on fake channels: lobby messages, relay, control frames, bad input."""

import itertools
import json

from hypothesis import example, given, settings, strategies as st

from gamed.core.testing import connect
from gamed.rooms.messages import with_sender
from gamed.rooms.service import RoomsService
from gamed.rooms.settings import RoomsSettings


def make_rooms(**overrides):
    counter = itertools.count()
    return RoomsService(RoomsSettings(**overrides),
                        new_token=lambda n: "tok%d" % next(counter))


class Client:
    def __init__(self, rooms, name=None):
        self.handler = rooms.handler()
        self.channel = connect(self.handler)
        self.n = 0
        if name:
            reply = self.request("login", details={"username": name, "avatar": 2, "color": 5,
                                                   "border_color": 6})
            assert reply["result"] == "ok", reply
            self.id = reply["playerId"]

    def send(self, kind, **fields):
        self.n += 1
        self.handler.text_received(json.dumps(dict({"id": self.n, "type": kind}, **fields)))
        return self.n

    def request(self, kind, **fields):
        request_id = self.send(kind, **fields)
        for message in self.channel.take():
            if isinstance(message, dict) and (message.get("requestId") == request_id or
                                              message.get("originId") == request_id):
                return message
        raise AssertionError("no reply to %s" % kind)

    def raw(self, text):
        self.handler.text_received(text)

    def take(self):
        return self.channel.take()


def room_of(rooms, *names):
    host = Client(rooms, names[0])
    invite = host.request("room_create")["inviteId"]
    others = [Client(rooms, name) for name in names[1:]]
    for other in others:
        assert other.request("room_join", inviteId=invite)["result"] == "ok"
    host.take()
    return [host] + others, invite


def started(rooms, *names):
    clients, invite = room_of(rooms, *names)
    clients[0].send("room_start", connectionType="server_broadcast")
    for client in clients:
        event = [m for m in client.take() if m.get("type") == "event_room_start"][0]
        client.send("event_room_start_ack", requestId=event["id"])
        client.take()
    return clients, invite


def test_every_server_message_has_its_own_id():
    rooms = make_rooms()
    clients, _ = room_of(rooms, "ann", "ben", "cid")
    for client in clients:
        client.take()
    clients[0].send("room_start", connectionType="server_broadcast")
    ids = [m["id"] for c in clients for m in c.take()]
    assert len(ids) == len(set(ids)) == 3


def test_login_ignores_client_ids_and_validates_details():
    rooms = make_rooms()
    client = Client(rooms)
    reply = client.request("login", details={"username": "ann", "id": "spoof", "host": True})
    assert reply["result"] == "ok" and reply["playerId"] != "spoof"
    assert reply["player"]["isHost"] is False
    assert client.request("login", details={"username": "x"})["error"] == "already_logged_in"
    for details in (None, {}, {"username": ""}, {"username": 5}, {"username": "x" * 40},
                    {"username": "ok", "color": "red"}, {"username": "ok", "avatar": True}):
        other = Client(rooms)
        reply = other.request("login", details=details)
        assert reply["type"] == "error" and reply["error"] in ("invalid_details",
                                                               "invalid_name"), reply


def test_actions_before_login_and_unknown_types():
    rooms = make_rooms()
    client = Client(rooms)
    for kind in ("room_create", "room_join", "room_leave", "room_start",
                 "event_room_start_ack"):
        reply = client.request(kind)
        assert reply["error"] == "not_logged_in" and reply["originId"] == client.n
    assert client.request("teleport")["error"] == "unknown_type"
    client.raw("{not json")
    [error] = client.take()
    assert error["type"] == "error" and error["originId"] is None
    client.raw("[1, 2]")
    assert client.take()[0]["error"] == "not_an_object"
    client.raw('{"id": 9, "type": 42}')
    assert client.take()[0]["error"] == "unknown_type"


def test_join_events_and_leave_with_new_host():
    rooms = make_rooms()
    (host, ben), invite = room_of(rooms, "ann", "ben")
    cid = Client(rooms, "cid")
    reply = cid.request("room_join", inviteId=invite)
    assert [p["username"] for p in reply["players"]] == ["ann", "ben", "cid"]
    for other in (host, ben):
        [event] = other.take()
        assert event["type"] == "event_player_joined" and event["player"]["id"] == cid.id
    reply = host.request("room_leave")
    assert reply["type"] == "room_leave_response" and reply["request_id"] == host.n
    for other in (ben, cid):
        [event] = other.take()
        assert event["type"] == "event_player_left" and event["player"] == host.id
        assert event["newHost"] == ben.id
    assert host.request("room_leave")["error"] == "not_in_room"


def test_start_only_by_the_host_and_not_alone():
    rooms = make_rooms()
    alone = Client(rooms, "solo")
    alone.request("room_create")
    assert alone.request("room_start")["error"] == "not_enough_players"
    (host, guest), _ = room_of(rooms, "ann", "ben")
    assert guest.request("room_start")["error"] == "not_host"
    assert host.take() == []


def test_relay_adds_sender_first_and_never_echoes():
    rooms = make_rooms()
    (a, b, c), _ = started(rooms, "ann", "ben", "cid")
    a.raw('{"type":"pos","x":1.5,"y":[1,2]}')
    assert a.take() == []
    for other in (b, c):
        [text] = other.channel.texts
        assert text == '{"sender":"%s","type":"pos","x":1.5,"y":[1,2]}' % a.id
        other.take()
    a.raw("{}")
    assert b.channel.texts == ['{"sender":"%s"}' % a.id]


def test_relay_never_lets_a_player_send_as_another():
    rooms = make_rooms()
    (a, b), _ = started(rooms, "ann", "ben")
    a.raw('{"type":"hit","sender":"%s","dmg":99}' % b.id)
    [text] = b.channel.texts
    assert json.loads(text) == {"sender": a.id, "type": "hit", "dmg": 99}
    assert text.count("sender") == 1


def test_relay_refuses_non_objects_without_forwarding():
    rooms = make_rooms()
    (a, b), _ = started(rooms, "ann", "ben")
    a.raw("[1,2,3]")
    assert b.take() == []
    assert a.take()[0]["error"] == "not_an_object"


def test_frames_for_a_player_who_has_not_acked_are_queued_then_dropped_past_the_limit():
    rooms = make_rooms(max_queued_frames=3)
    (a, b, c), _ = room_of(rooms, "ann", "ben", "cid")
    a.send("room_start", connectionType="server_broadcast")
    for client in (a, b, c):
        client.take()
    a.send("event_room_start_ack")
    b.send("event_room_start_ack")
    for n in range(3):
        a.raw('{"n":%d}' % n)
    assert [json.loads(t)["n"] for t in b.channel.texts] == [0, 1, 2]
    assert c.channel.texts == []  # queued
    c.send("event_room_start_ack")
    assert [m["n"] for m in c.take()] == [0, 1, 2]
    # a fourth player who never acks is dropped at the limit
    rooms2 = make_rooms(max_queued_frames=2)
    (x, y), _ = room_of(rooms2, "xen", "yul")
    x.send("room_start", connectionType="server_broadcast")
    x.send("event_room_start_ack")
    for n in range(3):
        x.raw('{"n":%d}' % n)
    assert y.channel.closed and y.channel.close_reason == "relay_queue_full"
    # until the transport reports the close, nothing more is queued or delivered to it
    y.take()
    for n in range(10):
        x.raw('{"n":%d}' % n)
    assert y.handler.pending == []
    y.send("event_room_start_ack")
    assert y.channel.texts == []


def test_end_game_control_and_disconnect_during_relay():
    rooms = make_rooms()
    (a, b, c), _ = started(rooms, "ann", "ben", "cid")
    a.raw('#{"id":7,"type":"end_game"}')
    [ack] = a.take()
    assert a.channel.texts == [] and ack["type"] == "end_game_ack" and ack["requestId"] == 7
    assert {p["id"] for p in ack["players"]} == {a.id, b.id, c.id}
    notices = [m for player in (b, c) for m in player.take()]
    assert notices == [{"type": "player_left", "player": a.id, "reason": "end_game",
                        "id": notice["id"]} for notice in notices] and len(notices) == 2
    b.raw('{"after":"end"}')
    assert a.take() == [] and len(c.take()) == 1  # a is back in the lobby
    b.handler.connection_lost("gone")
    [left] = c.take()
    assert left["type"] == "player_left" and left["player"] == b.id
    [event] = a.take()  # a is in the lobby: a lobby event
    assert event["type"] == "event_player_left" and event["player"] == b.id
    c.raw('#{"type":"teleport"}')
    assert c.take()[0]["error"] == "unknown_type"
    c.raw("#nonsense")
    assert c.take()[0]["error"] == "malformed_control"


def test_end_game_reaches_a_peer_not_yet_in_the_game_after_the_frames_before_it():
    rooms = make_rooms()
    clients, _ = room_of(rooms, "ann", "ben")
    ann, ben = clients
    ann.send("room_start", connectionType="server_broadcast")
    ann.take(), ben.take()
    ann.send("event_room_start_ack")
    ann.raw('{"n":1}')
    ann.raw('#{"id":3,"type":"end_game"}')
    ann.take()
    ben.send("event_room_start_ack")
    texts = [t for t in ben.channel.texts if t.startswith(('{"sender"', "#"))]
    assert json.loads(texts[0])["n"] == 1
    notice = json.loads(texts[1][1:])
    assert notice["type"] == "player_left" and notice["player"] == ann.id
    assert notice["reason"] == "end_game"


def test_host_disconnect_during_relay_names_the_new_host():
    rooms = make_rooms()
    (a, b), _ = started(rooms, "ann", "ben")
    a.handler.connection_lost("gone")
    [left] = b.take()
    assert left["newHost"] == b.id


def test_drain_tells_everyone_in_their_phase_and_closes():
    rooms = make_rooms()
    (a, b), _ = started(rooms, "ann", "ben")
    lobby = Client(rooms, "lobbyist")
    rooms.stopService()
    assert a.take()[0]["type"] == "server_closing" and a.channel.closed
    assert lobby.take()[0]["type"] == "event_server_closing" and lobby.channel.closed


def test_with_sender_edge_cases():
    prefix = '{"sender":"p",'
    assert with_sender(prefix, '{"a":1}') == '{"sender":"p","a":1}'
    assert with_sender(prefix, '  {"a":1}') == '{"sender":"p","a":1}'
    assert with_sender(prefix, '{ }') == '{"sender":"p"}'
    assert with_sender(prefix, '"text"') is None
    assert with_sender(prefix, "") is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["id", "type", "details", "inviteId", "requestId",
                                     "connectionType"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=10),
                              st.sampled_from(["login", "room_create", "room_join",
                                               "room_leave", "room_start",
                                               "event_room_start_ack"]),
                              st.fixed_dictionaries({"username": st.text(max_size=8)})),
                    max_size=5).map(json.dumps)), max_size=20))
def test_any_input_gets_answers_and_never_breaks_the_lobby(frames):
    rooms = make_rooms()
    (a, b), invite = room_of(rooms, "ann", "ben")
    fuzz = Client(rooms)
    for frame in frames:
        fuzz.raw(frame)
        fuzz.raw("#" + frame)
    # every reply is a JSON object with its own id
    for message in fuzz.take():
        assert isinstance(message, dict) and "id" in message
    # the existing room is intact and still works
    room = rooms.lobby.rooms[invite]
    assert [p.username for p in room.players[:2]] == ["ann", "ben"]
    b.take()
    a.send("room_start", connectionType="server_broadcast")
    assert any(m.get("type") == "event_room_start" for m in b.take())


def core_with(overrides=None):
    from twisted.internet import reactor

    from gamed.core.metrics import Metrics
    from gamed.core.runtime import Core
    from gamed.core.testing import make_test_config

    return Core(reactor=reactor, config=make_test_config(overrides), database=None,
                accounts=None, ratings=None, friends=None, metrics=Metrics(), presence=None,
                random=None)


def test_make_service_builds_both_listeners_and_reports_metrics():
    from gamed.rooms.service import make_service

    core = core_with()
    top = make_service(core)
    rooms = top.getServiceNamed("rooms")
    assert isinstance(rooms, RoomsService) and len(list(top)) == 3
    assert set(core.endpoints) == {("rooms", "websocket"), ("rooms", "lines")}
    assert core.endpoints[("rooms", "lines")].limits is core.config.rooms
    Client(rooms, "ann").request("room_create")
    text = core.metrics.render().decode()
    assert "gamed_rooms_open 1.0" in text and "gamed_rooms_players 1.0" in text


def test_an_empty_listen_value_disables_that_listener():
    from gamed.rooms.service import make_service

    core = core_with({("rooms", "websocket"): ""})
    top = make_service(core)
    assert len(list(top)) == 2 and set(core.endpoints) == {("rooms", "lines")}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["send", "send", "send", "ack", "ack", "end",
                                           "drop"]),
                          st.integers(0, 3)), min_size=4, max_size=40))
@example([("ack", 0), ("send", 0), ("ack", 1), ("send", 0), ("send", 1)])
@example([("ack", 0), ("ack", 1), ("send", 0), ("end", 1), ("send", 0), ("drop", 2),
          ("send", 0), ("ack", 3)])
@example([("ack", 0)] + [("send", 0)] * 4 + [("ack", 1), ("send", 1)])
def test_relay_matches_a_model_of_phases_queues_and_departures(actions):
    """Four players just told to start; random acks, frames, end_games and disconnects.
    Every player receives exactly the frames the model says, in order: frames of players
    in the game, never its own, queued until its ack (less those of a player who left
    meanwhile), none after it ended or left; a player whose queue overflows is dropped."""
    limit = 3
    rooms = make_rooms(max_queued_frames=limit)
    clients, _ = room_of(rooms, "ann", "ben", "cid", "dee")
    clients[0].send("room_start", connectionType="server_broadcast")
    for client in clients:
        client.take()
    phase = ["starting"] * 4
    pending = [[] for _ in clients]
    expected = [[] for _ in clients]
    received = [[] for _ in clients]
    gone = [False] * 4

    def collect():
        for n, client in enumerate(clients):
            received[n] += [t for t in client.channel.texts if t.startswith('{"sender":')]
            client.take()
            # the transport reports a close the handler asked for
            if client.channel.closed and not gone[n]:
                gone[n] = True
                client.handler.connection_lost(client.channel.close_reason)
                # those not in the game yet never get the frames of a player who left
                for m in range(4):
                    pending[m] = [(sender, k) for sender, k in pending[m]
                                  if sender != client.id]

    for serial, (action, n) in enumerate(actions):
        if gone[n]:
            continue
        client = clients[n]
        if action == "send" and phase[n] == "relay":
            frame = '{"n":%d}' % serial
            client.raw(frame)
            for m in range(4):
                if m == n or gone[m]:
                    continue
                if phase[m] == "relay":
                    expected[m].append((client.id, serial))
                elif phase[m] == "starting":
                    if len(pending[m]) >= limit:
                        phase[m] = "dropped"
                    else:
                        pending[m].append((client.id, serial))
        elif action == "ack" and phase[n] != "relay":  # once relaying, an ack is just data
            client.send("event_room_start_ack")
            if phase[n] == "starting":
                phase[n] = "relay"
                expected[n] += [entry for entry in pending[n] if entry[1] is not None]
                pending[n] = []
        elif action == "end":
            client.raw('#{"id":1,"type":"end_game"}')
            if phase[n] == "relay":  # peers not in the game yet get the notice queued
                for m in range(4):
                    if m != n and not gone[m] and phase[m] == "starting":
                        pending[m].append((client.id, None))
            if phase[n] in ("starting", "relay"):
                phase[n], pending[n] = "lobby", []
        elif action == "drop":
            client.channel.close("test")
        collect()
        for m in range(4):
            if phase[m] == "dropped":
                assert gone[m] and clients[m].channel.close_reason == "relay_queue_full"
            if gone[m] and phase[m] != "dropped":
                phase[m] = "gone"
    for n, client in enumerate(clients):
        got = [(json.loads(t)["sender"], json.loads(t)["n"]) for t in received[n]]
        assert got == expected[n], (n, phase[n])
    # the lobby agrees: whoever is left is in the room, in the phase the model says
    for n, client in enumerate(clients):
        player = client.handler.player
        if gone[n]:
            assert player is None
        else:
            assert player.phase == {"starting": "starting", "relay": "relay",
                                    "lobby": "lobby"}[phase[n]]
