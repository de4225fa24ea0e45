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


def refused(reply, kind, code, request_id):
    """The refusal the real client reads: its own `<type>_response`, the code in result."""
    assert reply["type"] == kind + "_response", reply
    assert reply["result"] == code, reply
    assert reply["requestId"] == reply["request_id"] == request_id
    assert isinstance(reply["errorMessage"], str) and len(reply["errorMessage"]) > 5
    assert isinstance(reply["id"], int)
    return True


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
    for details, code in ((None, "invalid_details"), ({}, "invalid_name"),
                          ({"username": ""}, "invalid_name"), ({"username": 5}, "invalid_name"),
                          ({"username": "x" * 40}, "invalid_name"),
                          ({"username": "ok", "color": "red"}, "invalid_details"),
                          ({"username": "ok", "avatar": True}, "invalid_details")):
        other = Client(rooms)
        assert refused(other.request("login", details=details), "login", code, other.n)
        assert other.handler.player is None


def test_login_again_outside_a_room_changes_the_profile_and_inside_is_refused():
    """The real client, refused a room (name_conflict), lets its user pick another name
    and sends login again on the same socket: that must work."""
    rooms = make_rooms()
    (host,), invite = room_of(rooms, "ann")
    twin = Client(rooms, "ANN")
    assert refused(twin.request("room_join", inviteId=invite), "room_join", "name_conflict",
                   twin.n)
    reply = twin.request("login", details={"username": "cid", "avatar": 4})
    assert reply["result"] == "ok" and reply["playerId"] == twin.id
    assert reply["player"]["username"] == "cid" and reply["player"]["avatar"] == 4
    reply = twin.request("room_join", inviteId=invite)
    assert [p["username"] for p in reply["players"]] == ["ann", "cid"]
    [joined] = host.take()
    assert joined["player"]["username"] == "cid" and joined["player"]["id"] == twin.id
    assert refused(twin.request("login", details={"username": "dee"}), "login",
                   "already_logged_in", twin.n)
    assert rooms.lobby.rooms[invite].players[1].username == "cid"


def test_actions_before_login_and_unknown_types():
    rooms = make_rooms()
    client = Client(rooms)
    for kind in ("room_create", "room_join", "room_leave", "room_start",
                 "event_room_start_ack"):
        assert refused(client.request(kind), kind, "not_logged_in", client.n)
    reply = client.request("teleport")
    assert reply["type"] == "error" and reply["error"] == "unknown_type"
    assert reply["originId"] == client.n
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
    assert refused(host.request("room_leave"), "room_leave", "not_in_room", host.n)


def test_start_only_by_the_host_and_not_alone():
    rooms = make_rooms()
    alone = Client(rooms, "solo")
    alone.request("room_create")
    assert refused(alone.request("room_start"), "room_start", "not_enough_players", alone.n)
    (host, guest), _ = room_of(rooms, "ann", "ben")
    assert refused(guest.request("room_start"), "room_start", "not_host", guest.n)
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


def test_the_drain_linger_is_wired_and_kept_within_the_grace_period():
    from gamed.rooms.service import make_service

    rooms = make_service(core_with()).getServiceNamed("rooms")
    assert rooms.drain_linger == 2.0 and rooms.clock is not None
    rooms = make_service(core_with({("shutdown", "grace_period"): 0.5})).getServiceNamed(
        "rooms")
    assert rooms.drain_linger == 0.5
    rooms = make_service(core_with({("rooms", "drain_linger"): 0.0})).getServiceNamed("rooms")
    Client(rooms, "ann")
    assert rooms.stopService() is None  # nothing to wait for: closed at once


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
    in the game, never its own, queued until its ack (with a player_left notice queued
    after the frames of a player who left or ended meanwhile), none after it ended or left;
    a player whose queue overflows is dropped."""
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
                # those not in the game yet get its frames, then the notice, on their ack
                for m in range(4):
                    if m != n and phase[m] == "starting":
                        pending[m].append((client.id, None))

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
            if phase[n] in ("starting", "relay"):  # peers not in the game yet: queued
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


def test_every_refused_request_is_answered_by_its_own_response_with_the_code():
    rooms = make_rooms(max_players=3)
    ann = Client(rooms)
    assert refused(ann.request("room_create"), "room_create", "not_logged_in", ann.n)
    ann = Client(rooms, "ann")
    assert refused(ann.request("room_leave"), "room_leave", "not_in_room", ann.n)
    assert refused(ann.request("room_start"), "room_start", "not_in_room", ann.n)
    assert refused(ann.request("event_room_start_ack", requestId=1), "event_room_start_ack",
                   "not_starting", ann.n)
    assert refused(ann.request("event_room_start_acknowledge", responseId=1),
                   "event_room_start_acknowledge", "not_starting", ann.n)
    invite = ann.request("room_create")["inviteId"]
    assert refused(ann.request("room_create"), "room_create", "already_in_room", ann.n)
    assert refused(ann.request("room_join", inviteId=invite), "room_join", "already_in_room",
                   ann.n)
    assert refused(ann.request("room_start"), "room_start", "not_enough_players", ann.n)
    assert refused(ann.request("login", details={"username": "x"}), "login",
                   "already_logged_in", ann.n)
    ben = Client(rooms, "Ann")
    assert refused(ben.request("room_join", inviteId="nope"), "room_join", "room_not_found",
                   ben.n)
    assert refused(ben.request("room_join"), "room_join", "room_not_found", ben.n)
    assert refused(ben.request("room_join", inviteId=invite), "room_join", "name_conflict",
                   ben.n)
    assert ben.request("login", details={"username": "ben"})["result"] == "ok"
    assert ben.request("room_join", inviteId=invite)["result"] == "ok"
    assert refused(ben.request("room_start"), "room_start", "not_host", ben.n)
    assert refused(ann.request("room_start", connectionType="peer_to_peer"), "room_start",
                   "unsupported_connection_type", ann.n)
    assert refused(ann.request("room_start", connectionType=5), "room_start",
                   "unsupported_connection_type", ann.n)
    assert Client(rooms, "cid").request("room_join", inviteId=invite)["result"] == "ok"
    dee = Client(rooms, "dee")
    assert refused(dee.request("room_join", inviteId=invite), "room_join", "room_is_full",
                   dee.n)
    ann.send("room_start", connectionType="server_broadcast")
    assert refused(ann.request("room_start"), "room_start", "already_playing", ann.n)
    rooms.lobby.rooms[invite].players[2].link.connection_lost("gone")  # room not full
    assert refused(dee.request("room_join", inviteId=invite), "room_join", "already_playing",
                   dee.n)
    assert refused(dee.request("room_start"), "room_start", "not_in_room", dee.n)
    # string ids are echoed as sent
    dee.raw('{"id":"abc","type":"room_leave"}')
    assert refused(dee.take()[0], "room_leave", "not_in_room", "abc")


def test_only_frames_that_are_no_request_get_the_error_frame():
    rooms = make_rooms()
    client = Client(rooms, "ann")
    for frame, code in (('{"type":"room_create"}', "missing_id"),
                        ('{"id":null,"type":"room_create"}', "missing_id"),
                        ('{"id":true,"type":"room_create"}', "missing_id"),
                        ('{"id":[1],"type":"room_create"}', "missing_id"),
                        ('{"id":1e400,"type":"room_create"}', "missing_id"),
                        ('{"id":"\\ud800","type":"room_create"}', "missing_id"),
                        ('{"id":4,"type":"teleport"}', "unknown_type"),
                        ('{"id":4}', "unknown_type"),
                        ("{not json", "malformed_json"),
                        ("[1]", "not_an_object")):
        client.raw(frame)
        [reply] = client.take()
        assert reply["type"] == "error" and reply["error"] == code, frame
        assert reply["originId"] == (4 if code == "unknown_type" else None)
    assert client.handler.player.room is None  # none of them was acted on


def test_a_blank_frame_is_a_keep_alive_with_no_answer_in_every_phase():
    rooms = make_rooms()
    idle = Client(rooms)
    for text in ("", " ", "\t", "\r\n "):
        idle.raw(text)
    assert idle.take() == []
    (a, b), _ = started(rooms, "ann", "ben")
    for text in ("", "  "):
        a.raw(text)
    assert a.take() == [] and b.take() == []


def test_a_relay_listener_is_kept_alive_by_frames_reaching_it_and_only_by_them():
    rooms = make_rooms()
    (a, b, c), _ = started(rooms, "ann", "ben", "cid")
    assert not any(x.handler.kept_alive() for x in (a, b, c))  # nothing relayed yet
    a.raw('{"n":1}')
    # a sent it (active itself), b and c received it
    assert [x.handler.kept_alive() for x in (a, b, c)] == [False, True, True]
    # asked again with nothing new: idle
    assert [x.handler.kept_alive() for x in (a, b, c)] == [False, False, False]
    a.raw('{"n":2}')
    c.raw("")  # c's keep-alive: what reached it before counts no more
    assert [x.handler.kept_alive() for x in (a, b, c)] == [False, True, False]
    a.raw('{"n":3}')
    b.raw('#{"id":1,"type":"end_game"}')  # b is back in the lobby: not a relay listener
    assert [x.handler.kept_alive() for x in (a, b, c)] == [False, False, True]
    assert not Client(rooms, "dee").handler.kept_alive()


def test_a_peer_told_to_start_hears_departures_in_the_relays_words_after_earlier_frames():
    """The real client shows its game screen as soon as it reads event_room_start (before
    its ack reaches the server): a lobby event_player_left would be lost on it, and the
    game would wait forever for the leaver's turn."""
    rooms = make_rooms()
    (ann, ben, cid), _ = room_of(rooms, "ann", "ben", "cid")
    for c in (ben, cid):
        c.take()
    ann.send("room_start", connectionType="server_broadcast")
    for c in (ann, ben, cid):
        c.take()
    ann.send("event_room_start_ack")
    ben.send("event_room_start_ack")
    ann.raw('{"type":"random_seed","seed":0.5}')
    ann.handler.connection_lost("connection lost")
    assert ben.channel.texts[-1].startswith("#")
    notice = json.loads(ben.channel.texts[-1][1:])
    assert notice["type"] == "player_left" and notice["newHost"] == ben.id
    assert cid.channel.texts == []  # nothing yet, no lobby event either
    cid.send("event_room_start_ack")
    seed, left = cid.channel.texts
    assert json.loads(seed) == {"sender": ann.id, "type": "random_seed", "seed": 0.5}
    left = json.loads(left[1:])
    assert left["type"] == "player_left" and left["player"] == ann.id
    assert left["newHost"] == ben.id and left["reason"] == "connection lost"


def test_end_game_again_from_the_rooms_lobby_is_answered_not_refused():
    rooms = make_rooms()
    (a, b), _ = started(rooms, "ann", "ben")
    a.raw('#{"id":5,"type":"end_game"}')
    first = a.take()
    b.take()
    a.raw('#{"id":6,"type":"end_game"}')
    [again] = a.take()
    assert again["type"] == "end_game_ack" and again["requestId"] == 6
    assert again["players"] == first[0]["players"]
    assert b.take() == []  # nobody is told twice
    lone = Client(rooms, "cid")
    lone.raw('#{"id":1,"type":"end_game"}')
    assert lone.take()[0]["error"] == "not_in_game"


def test_drain_speaks_the_relays_words_to_a_player_told_to_start():
    rooms = make_rooms()
    (a, b), _ = room_of(rooms, "ann", "ben")
    a.send("room_start", connectionType="server_broadcast")
    a.take(), b.take()
    rooms.stopService()
    for c in (a, b):
        assert c.channel.texts[0].startswith('#{"type":"server_closing"')
        assert c.channel.closed


def test_drain_keeps_a_player_in_no_room_a_moment_to_answer_its_request():
    """The login form is the one screen where the real client shows a server's reason:
    a request sent (or on its way) during the drain's linger gets result server_closing."""
    from twisted.internet import task

    clock = task.Clock()
    counter = itertools.count()
    rooms = RoomsService(RoomsSettings(), new_token=lambda n: "tok%d" % next(counter),
                         clock=clock, drain_linger=2.0)
    (a, b), _ = room_of(rooms, "ann", "ben")
    refused_join = Client(rooms, "cid")
    silent = Client(rooms)
    stopped = rooms.stopService()
    fired = []
    stopped.addCallback(fired.append)
    assert a.channel.closed and b.channel.closed  # in a room: closed at once
    for c in (refused_join, silent):
        [event] = c.take()
        assert event["type"] == "event_server_closing" and not c.channel.closed
    assert refused(refused_join.request("room_join", inviteId="tok0"), "room_join",
                   "server_closing", refused_join.n)
    assert refused_join.channel.closed and not silent.channel.closed
    clock.advance(1.9)
    assert not silent.channel.closed and fired == []
    clock.advance(0.1)
    assert silent.channel.closed and fired == [None]


REQUEST_TYPES = ["login", "room_create", "room_join", "room_leave", "room_start",
                 "event_room_start_ack", "event_room_start_acknowledge"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(REQUEST_TYPES), st.text(max_size=6), st.none(),
                       st.integers())},
    optional={"id": st.one_of(st.integers(), st.text(max_size=4), st.none(), st.booleans(),
                              st.floats(allow_nan=False, allow_infinity=False),
                              st.lists(st.integers(), max_size=1)),
              "details": st.one_of(st.none(), st.fixed_dictionaries(
                  {"username": st.one_of(st.sampled_from(["ann", "ANN", "ben", ""]),
                                         st.integers())})),
              "inviteId": st.one_of(st.sampled_from(["tok0", "nope"]), st.integers()),
              "connectionType": st.sampled_from(["server_broadcast", "p2p"])}),
    max_size=15))
def test_every_request_is_answered_by_its_own_response_and_only_non_requests_by_error(
        frames):
    rooms = make_rooms()
    (host, ben), invite = room_of(rooms, "ann", "ben")
    assert invite == "tok0"
    fuzz = Client(rooms)
    for frame in frames:
        fuzz.raw(json.dumps(frame))
        replies = [m for m in fuzz.take()  # less the room's events
                   if m["type"] == "error" or m["type"].endswith("_response")]
        kind, request_id = frame["type"], frame.get("id")
        if fuzz.handler.player is not None and fuzz.handler.player.phase == "relay":
            break  # its frames are game data from here on
        [reply] = replies
        is_request = (kind in REQUEST_TYPES and request_id is not None
                      and not isinstance(request_id, (bool, list)))
        if is_request:
            assert reply["type"] == kind + "_response"
            assert reply["requestId"] == reply["request_id"] == request_id
            assert isinstance(reply["result"], str)
            assert reply["result"] == "ok" or isinstance(reply["errorMessage"], str)
        else:
            assert reply["type"] == "error" and "result" not in reply
            assert reply["error"] in ("unknown_type", "missing_id")



def test_a_second_login_only_after_a_refused_room_request():
    """The seed: no second login; the real client: login again after a refused join."""
    ann = Client(make_rooms(), "ann")
    profile = {"username": "ann2", "avatar": 2, "color": 5}
    assert ann.request("login", details=profile)["result"] == "already_logged_in"
    assert ann.request("room_join", inviteId="nope")["result"] == "room_not_found"
    assert ann.request("login", details=profile)["result"] == "ok"
    assert ann.request("login", details=dict(profile, username="ann3"))["result"] == \
        "already_logged_in"
