"""rooms over real loopback sockets: TCP and WebSocket players in one room, back-pressure."""

import json
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads
from twisted.internet.endpoints import TCP4ServerEndpoint

from gamed.core.lines import JsonLinesFactory
from gamed.core.metrics import Metrics
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import websocket_factory
from gamed.rooms.service import RoomsService
from gamed.rooms.settings import RoomsSettings


async def listen(settings, clock=reactor):
    metrics = Metrics()
    rooms = RoomsService(settings, metrics)
    stats = metrics.service("rooms")
    ports = {}
    for kind, make in (("lines", JsonLinesFactory), ("websocket", websocket_factory)):
        endpoint = StreamEndpoint("rooms", kind, rooms.handler, settings, clock, stats)
        ports[kind] = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            make(endpoint))
    return rooms, stats, ports


class LineClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send_text(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def recv_text(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def close(self):
        self.sock.close()


class WsClient:
    def __init__(self, port):
        import websocket

        self.ws = websocket.create_connection("ws://127.0.0.1:%d/game" % port, timeout=5)

    def send_text(self, text):
        self.ws.send(text)

    def recv_text(self):
        return self.ws.recv()

    def close(self):
        self.ws.close()


def converse(client, message, want):
    client.send_text(json.dumps(message))
    while True:
        reply = json.loads(client.recv_text())
        if reply.get("type") == want:
            return reply


def lobby_script(ports):
    host = WsClient(ports["websocket"].getHost().port)
    guest = LineClient(ports["lines"].getHost().port)
    host_id = converse(host, {"id": 0, "type": "login", "details": {"username": "wsann"}},
                       "login_response")["playerId"]
    guest_id = converse(guest, {"id": 0, "type": "login", "details": {"username": "tcpben"}},
                        "login_response")["playerId"]
    invite = converse(host, {"id": 1, "type": "room_create"}, "room_create_response")["inviteId"]
    converse(guest, {"id": 1, "type": "room_join", "inviteId": invite}, "room_join_response")
    host.send_text(json.dumps({"id": 2, "type": "room_start",
                               "connectionType": "server_broadcast"}))
    for client in (host, guest):
        event = None
        while event is None or event.get("type") != "event_room_start":
            event = json.loads(client.recv_text())
        client.send_text(json.dumps({"id": 3, "type": "event_room_start_ack",
                                     "requestId": event["id"]}))
    return host, guest, host_id, guest_id


@pytest_twisted.ensureDeferred
async def test_websocket_and_tcp_players_share_a_room_and_relay():
    rooms, stats, ports = await listen(RoomsSettings())
    try:
        def script():
            host, guest, host_id, guest_id = lobby_script(ports)
            host.send_text('{"type":"hello","n":1}')
            from_host = guest.recv_text()
            guest.send_text('{"type":"back","n":2}')
            from_guest = host.recv_text()
            host.close()
            left = guest.recv_text()
            guest.close()
            return from_host, from_guest, left, host_id, guest_id

        from_host, from_guest, left, host_id, guest_id = await threads.deferToThread(script)
        assert from_host == '{"sender":"%s","type":"hello","n":1}' % host_id
        assert from_guest == '{"sender":"%s","type":"back","n":2}' % guest_id
        assert left.startswith("#")
        control = json.loads(left[1:])
        assert control["type"] == "player_left" and control["player"] == host_id
        assert control["newHost"] == guest_id
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_player_who_stops_reading_is_dropped_and_the_others_told():
    settings = RoomsSettings(max_send_buffer=64 * 1024, rate=100000.0, burst=100000)
    rooms, stats, ports = await listen(settings)
    try:
        def script():
            host, guest, host_id, guest_id = lobby_script(ports)
            guest.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            frame = '{"type":"spam","pad":"%s"}' % ("x" * 1000)
            for _ in range(5000):  # ~5 MB towards a guest who never reads
                try:
                    host.send_text(frame)
                except Exception:
                    break
            return host, guest_id

        host, guest_id = await threads.deferToThread(script)
        for _ in range(500):
            if stats.errors.get("slow_reader"):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        assert stats.errors.get("slow_reader") == 1

        def read_left():
            while True:
                text = host.recv_text()
                if text.startswith("#"):
                    host.close()
                    return json.loads(text[1:])

        left = await threads.deferToThread(read_left)
        assert left["type"] == "player_left" and left["player"] == guest_id
        assert left["reason"] == "slow_reader"
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_oversize_frames_get_an_error_then_close_and_the_room_carries_on():
    settings = RoomsSettings(max_line_length=1024)
    rooms, stats, ports = await listen(settings)
    try:
        def script():
            host, guest, host_id, guest_id = lobby_script(ports)  # host on WS, guest on TCP
            guest.send_text('{"type":"big","pad":"%s"}' % ("x" * 2000))
            refusal = guest.recv_text()
            assert refusal.startswith("#")  # in the relay: a control frame, not game data
            refusal = json.loads(refusal[1:])
            try:
                closed = guest.recv_text() is None
            except (EOFError, OSError):
                closed = True
            left = host.recv_text()
            # the host, alone now, is still served: end the game and leave the room
            host.send_text('#{"id":9,"type":"end_game"}')
            ack = host.recv_text()
            leave = converse(host, {"id": 10, "type": "room_leave"}, "room_leave_response")
            host.close()
            return refusal, closed, left, ack, leave, guest_id

        refusal, closed, left, ack, leave, guest_id = await threads.deferToThread(script)
        assert refusal["type"] == "error" and refusal["error"] == "line_too_long"
        assert closed
        control = json.loads(left[1:])
        assert left[0] == "#" and control["type"] == "player_left"
        assert control["player"] == guest_id and control["reason"] == "line_too_long"
        assert json.loads(ack[1:])["type"] == "end_game_ack"
        assert leave["result"] == "ok" and rooms.lobby.rooms == {}
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_oversize_websocket_frame_in_the_lobby_is_refused_and_announced():
    settings = RoomsSettings(max_line_length=1024)
    rooms, stats, ports = await listen(settings)
    try:
        def script():
            host = LineClient(ports["lines"].getHost().port)
            guest = WsClient(ports["websocket"].getHost().port)
            converse(host, {"id": 0, "type": "login", "details": {"username": "tcpann"}},
                     "login_response")
            guest_id = converse(guest, {"id": 0, "type": "login",
                                        "details": {"username": "wsben"}},
                                "login_response")["playerId"]
            invite = converse(host, {"id": 1, "type": "room_create"},
                              "room_create_response")["inviteId"]
            converse(guest, {"id": 1, "type": "room_join", "inviteId": invite},
                     "room_join_response")
            guest.send_text(json.dumps({"id": 2, "type": "room_leave", "pad": "x" * 2000}))
            refusal = json.loads(guest.recv_text())
            assert json.loads(host.recv_text())["type"] == "event_player_joined"
            left = json.loads(host.recv_text())
            guest.close()
            return host, refusal, left, guest_id

        host, refusal, left, guest_id = await threads.deferToThread(script)
        host.close()
        assert refusal["type"] == "error" and refusal["error"] == "line_too_long"
        assert left["type"] == "event_player_left" and left["player"] == guest_id
        [room] = rooms.lobby.rooms.values()
        assert [p.username for p in room.players] == ["tcpann"] and room.host.username == "tcpann"
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_flooding_player_is_limited_then_dropped_and_the_others_told():
    settings = RoomsSettings(rate=5.0, burst=20, flood_close_after=10)
    rooms, stats, ports = await listen(settings)
    try:
        def script():
            host, guest, host_id, guest_id = lobby_script(ports)  # the guest is on TCP
            guest.sock.sendall(b"".join(b'{"n":%d}\n' % n for n in range(60)))
            got = []
            while True:
                text = host.recv_text()
                got.append(text)
                if text.startswith("#"):
                    break
            replies = []
            try:
                while True:
                    text = guest.recv_text()
                    assert text.startswith("#")  # refusals in the relay are control frames
                    replies.append(json.loads(text[1:]))
            except (EOFError, OSError):
                pass
            host.close()
            return got, replies, guest_id

        got, replies, guest_id = await threads.deferToThread(script)
        relayed, left = got[:-1], json.loads(got[-1][1:])
        # the burst went through (less the two lobby frames the guest had sent), in order
        assert [json.loads(t)["n"] for t in relayed] == list(range(len(relayed)))
        assert 10 <= len(relayed) <= 20
        assert left["type"] == "player_left" and left["player"] == guest_id
        assert left["reason"] == "flood"
        codes = [r.get("error") for r in replies if r.get("type") == "error"]
        assert codes[0] == "rate_limited" and codes[-1] == "flood"
    finally:
        for port in ports.values():
            await port.stopListening()


CLIENTS = {"lines": LineClient, "websocket": WsClient}


def client_on(ports, transport):
    return CLIENTS[transport](ports[transport].getHost().port)


def ask(client, message):
    """Send a request; the first frame answering it (events on the way are skipped)."""
    client.send_text(json.dumps(message))
    while True:
        reply = json.loads(client.recv_text())
        if message.get("id") is not None and message["id"] in (reply.get("requestId"),
                                                               reply.get("originId")):
            return reply
        if reply.get("type") == "error":
            return reply  # a frame that was no request: its error


def closed_after(client):
    """Every frame up to the close (a close is EOF on TCP, a close frame on WebSocket)."""
    frames = []
    try:
        while True:
            text = client.recv_text()
            if not text:
                return frames
            frames.append(text)
    except Exception:
        return frames


@pytest.mark.parametrize("transport", ["lines", "websocket"])
@pytest_twisted.ensureDeferred
async def test_every_refusal_reaches_the_client_as_its_own_response(transport):
    rooms, stats, ports = await listen(RoomsSettings(max_players=3))
    try:
        def script():
            replies = []

            def refusal(client, message, code):
                reply = ask(client, message)
                replies.append((message["type"], message["id"], code, reply))

            ann, ben, cid, dee = (client_on(ports, transport) for _ in range(4))
            refusal(ann, {"id": 0, "type": "room_create"}, "not_logged_in")
            refusal(ann, {"id": 1, "type": "login", "details": {"username": ""}},
                    "invalid_name")
            refusal(ann, {"id": 2, "type": "login", "details": {"username": "ann",
                                                                "color": "red"}},
                    "invalid_details")
            assert ask(ann, {"id": 3, "type": "login",
                             "details": {"username": "ann"}})["result"] == "ok"
            refusal(ann, {"id": 4, "type": "room_leave"}, "not_in_room")
            refusal(ann, {"id": 5, "type": "room_start"}, "not_in_room")
            refusal(ann, {"id": 6, "type": "event_room_start_ack", "requestId": 1},
                    "not_starting")
            invite = ask(ann, {"id": 7, "type": "room_create"})["inviteId"]
            refusal(ann, {"id": 8, "type": "room_create"}, "already_in_room")
            refusal(ann, {"id": 9, "type": "room_start",
                          "connectionType": "server_broadcast"}, "not_enough_players")
            refusal(ann, {"id": 10, "type": "login", "details": {"username": "x"}},
                    "already_logged_in")
            assert ask(ben, {"id": 0, "type": "login",
                             "details": {"username": "ANN"}})["result"] == "ok"
            refusal(ben, {"id": 1, "type": "room_join", "inviteId": "AAAAAAAAAAAAAAAA"},
                    "room_not_found")
            refusal(ben, {"id": 2, "type": "room_join", "inviteId": invite}, "name_conflict")
            assert ask(ben, {"id": 3, "type": "login",
                             "details": {"username": "ben"}})["result"] == "ok"
            assert ask(ben, {"id": 4, "type": "room_join",
                             "inviteId": invite})["result"] == "ok"
            refusal(ben, {"id": 5, "type": "room_start", "connectionType": "server_broadcast"},
                    "not_host")
            refusal(ann, {"id": 11, "type": "room_start", "connectionType": "peer_to_peer"},
                    "unsupported_connection_type")
            for n, client in enumerate((cid, dee)):
                assert ask(client, {"id": 0, "type": "login",
                                    "details": {"username": "p%d" % n}})["result"] == "ok"
            assert ask(cid, {"id": 1, "type": "room_join", "inviteId": invite})["result"] == "ok"
            refusal(dee, {"id": 1, "type": "room_join", "inviteId": invite}, "room_is_full")
            ann.send_text(json.dumps({"id": 12, "type": "room_start",
                                      "connectionType": "server_broadcast"}))
            refusal(ann, {"id": 13, "type": "room_start"}, "already_playing")
            cid.close()
            refusal(dee, {"id": 2, "type": "room_join", "inviteId": invite}, "already_playing")
            errors = [ask(dee, {"id": 3, "type": "teleport"}), ask(dee, {"type": "room_leave"})]
            dee.send_text("{oops")
            errors.append(json.loads(dee.recv_text()))
            for client in (ann, ben, dee):
                client.close()
            return replies, errors

        replies, errors = await threads.deferToThread(script)
        assert len(replies) == 16
        for kind, request_id, code, reply in replies:
            assert reply["type"] == kind + "_response", (code, reply)
            assert reply["result"] == code and reply["errorMessage"]
            assert reply["requestId"] == reply["request_id"] == request_id
        assert [(e["type"], e["error"], e["originId"]) for e in errors] == [
            ("error", "unknown_type", 3), ("error", "missing_id", None),
            ("error", "malformed_json", None)]
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest.mark.parametrize("transport", ["lines", "websocket"])
@pytest_twisted.ensureDeferred
async def test_a_listening_relay_player_is_not_idle_and_a_blank_frame_keeps_a_quiet_one(
        transport):
    """idle_timeout 300 s on a task.Clock (the WebSocket pings are off: only the room's
    frames and the keep-alive count)."""
    clock = task.Clock()
    rooms, stats, ports = await listen(RoomsSettings(idle_timeout=300.0, ping_interval=0.0),
                                       clock)

    def conns():
        return {c.player.username: c.channel for c in rooms.connections}

    def open_ones():
        return {name for name, channel in conns().items() if not channel.closed}

    try:
        def setup():
            talker, listener, quiet = (client_on(ports, transport) for _ in range(3))
            ids = [ask(c, {"id": 0, "type": "login", "details": {"username": name}})["playerId"]
                   for c, name in ((talker, "talker"), (listener, "listener"),
                                   (quiet, "quiet"))]
            invite = ask(talker, {"id": 1, "type": "room_create"})["inviteId"]
            for c in (listener, quiet):
                ask(c, {"id": 1, "type": "room_join", "inviteId": invite})
            talker.send_text(json.dumps({"id": 2, "type": "room_start",
                                         "connectionType": "server_broadcast"}))
            for c in (talker, listener, quiet):
                event = None
                while event is None or event.get("type") != "event_room_start":
                    event = json.loads(c.recv_text())
                c.send_text(json.dumps({"id": 3, "type": "event_room_start_ack",
                                        "requestId": event["id"]}))
            return talker, listener, quiet, ids

        talker, listener, quiet, ids = await threads.deferToThread(setup)
        for _ in range(500):  # every ack handled
            if all(c.player.phase == "relay" for c in rooms.connections):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        clock.advance(299)

        def talk(n):
            talker.send_text('{"type":"turn","n":%d}' % n)
            return [json.loads(c.recv_text())["n"] for c in (listener, quiet)]

        assert await threads.deferToThread(talk, 1) == [1, 1]
        clock.advance(1)  # t=300: listener and quiet were sent frames: both stay
        assert open_ones() == {"talker", "listener", "quiet"}
        assert await threads.deferToThread(talk, 2) == [2, 2]
        clock.advance(150)  # t=450: quiet sends a blank frame (no answer)
        await threads.deferToThread(quiet.send_text, "")
        for _ in range(500):
            if conns()["quiet"].last_activity == 450:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        assert conns()["quiet"].last_activity == 450
        clock.advance(150)  # t=600: the talker only talked, nothing reached it: idle
        assert open_ones() == {"listener", "quiet"}

        def left():
            return [json.loads(c.recv_text()[1:]) for c in (listener, quiet)]

        for notice in await threads.deferToThread(left):
            assert notice["type"] == "player_left" and notice["player"] == ids[0]
            assert notice["reason"] == "idle_timeout" and notice["newHost"] == ids[1]
        closed = await threads.deferToThread(closed_after, talker)
        assert [json.loads(t[1:])["error"] for t in closed] == ["idle_timeout"]
        clock.advance(150)  # t=750: quiet's keep-alive was 300 s ago, nothing since
        assert open_ones() == {"listener"}
        clock.advance(150)  # t=900: the room is silent: the listener goes too
        assert open_ones() == set()
        for client in (listener, quiet):
            frames = await threads.deferToThread(closed_after, client)
            assert json.loads(frames[-1][1:])["error"] == "idle_timeout"
    finally:
        for port in ports.values():
            await port.stopListening()


@pytest.mark.parametrize("transport", ["lines", "websocket"])
@pytest_twisted.ensureDeferred
async def test_shutdown_reaches_each_player_in_the_words_of_its_screen(transport):
    """A player in a room or a game is told and closed at once; one on the login form
    is told, and its request during the linger is answered with result server_closing."""
    clock = task.Clock()
    settings = RoomsSettings()
    metrics = Metrics()
    rooms = RoomsService(settings, metrics, clock=clock, drain_linger=2.0)
    endpoint = StreamEndpoint("rooms", transport, rooms.handler, settings, reactor,
                              metrics.service("rooms"))
    make = {"lines": JsonLinesFactory, "websocket": websocket_factory}[transport]
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make(endpoint))
    ports = {transport: port}
    try:
        def setup():
            ann, ben, cid, form = (client_on(ports, transport) for _ in range(4))
            for n, c in enumerate((ann, ben, cid, form)):
                assert ask(c, {"id": 0, "type": "login",
                               "details": {"username": "p%d" % n}})["result"] == "ok"
            invite = ask(ann, {"id": 1, "type": "room_create"})["inviteId"]
            ask(cid, {"id": 1, "type": "room_join", "inviteId": invite})
            ask(ben, {"id": 1, "type": "room_create"})  # ben: in a room of his own
            ann.send_text(json.dumps({"id": 2, "type": "room_start",
                                      "connectionType": "server_broadcast"}))
            for c in (ann, cid):
                event = None
                while event is None or event.get("type") != "event_room_start":
                    event = json.loads(c.recv_text())
            ann.send_text(json.dumps({"id": 3, "type": "event_room_start_ack",
                                      "requestId": event["id"]}))
            return ann, ben, cid, form

        ann, ben, cid, form = await threads.deferToThread(setup)
        for _ in range(500):
            if any(c.player.phase == "relay" for c in rooms.connections):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        stopped = rooms.stopService()  # ann relays, cid was told to start, ben is in a room

        def after():
            told = {name: closed_after(c) for name, c in (("ann", ann), ("ben", ben),
                                                          ("cid", cid))}
            first = json.loads(form.recv_text())
            reply = ask(form, {"id": 5, "type": "room_create"})
            return told, first, reply, closed_after(form)

        told, first, reply, rest = await threads.deferToThread(after)
        assert json.loads(told["ann"][-1][1:])["type"] == "server_closing"
        assert json.loads(told["cid"][-1][1:])["type"] == "server_closing"
        assert json.loads(told["ben"][-1])["type"] == "event_server_closing"
        assert first["type"] == "event_server_closing"
        assert reply["type"] == "room_create_response" and reply["requestId"] == 5
        assert reply["result"] == "server_closing" and reply["errorMessage"]
        assert rest == []  # closed right after the answer
        clock.advance(2)
        await stopped
    finally:
        await port.stopListening()
