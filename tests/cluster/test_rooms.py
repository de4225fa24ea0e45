"""rooms on two real nodes: an invite code made on one node works on the other; the room's
relay spans the nodes (order per sender kept, `sender` stamped by the server) and a
departure is told across them."""

from __future__ import annotations

import json
import socket

from tests.cluster.test_daemons import get, wait_for


class RoomsClient:
    def __init__(self, daemon):
        self.sock = socket.create_connection(("127.0.0.1", daemon.ports["rooms_tcp"]),
                                             timeout=15)
        self.buf = b""

    def send(self, message) -> None:
        self.send_text(json.dumps(message))

    def send_text(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def recv_text(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def wait(self, kind: str) -> dict:
        while True:
            text = self.recv_text()
            message = json.loads(text[1:] if text.startswith("#") else text)
            if message.get("type") == kind:
                return message


def test_a_room_spans_two_nodes(start_node):
    a, b = start_node("a"), start_node("b")
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")
    host, guest = RoomsClient(a), RoomsClient(b)
    host.send({"id": 0, "type": "login", "details": {"username": "hostann"}})
    host_id = host.wait("login_response")["playerId"]
    guest.send({"id": 0, "type": "login", "details": {"username": "guestben"}})
    guest_id = guest.wait("login_response")["playerId"]
    host.send({"id": 1, "type": "room_create"})
    invite = host.wait("room_create_response")["inviteId"]
    # the invite made on a works on b; an unknown one is still refused there
    guest.send({"id": 1, "type": "room_join", "inviteId": "no-such-room"})
    assert guest.wait("room_join_response")["result"] == "room_not_found"
    guest.send({"id": 2, "type": "room_join", "inviteId": invite})
    joined = guest.wait("room_join_response")
    assert joined["result"] == "ok"
    assert [p["id"] for p in joined["players"]] == [host_id, guest_id]
    assert host.wait("event_player_joined")["player"]["id"] == guest_id
    host.send({"id": 2, "type": "room_start", "connectionType": "server_broadcast"})
    for client in (host, guest):
        start = client.wait("event_room_start")
        client.send({"id": 3, "type": "event_room_start_ack", "requestId": start["id"]})
    # the relay, both ways, in order, stamped with the sender the server knows
    for n in range(20):
        guest.send_text('{"type":"move","n":%d}' % n)
        host.send_text('{"type":"turn","n":%d,"sender":"forged"}' % n)
    for n in range(20):
        assert host.recv_text() == '{"sender":"%s","type":"move","n":%d}' % (guest_id, n)
    for n in range(20):
        # a forged sender never passes: the server's own stamp replaces it
        assert guest.recv_text() == '{"sender":"%s","type":"turn","n":%d}' % (host_id, n)
    # the guest goes away on b: the host on a hears it
    guest.sock.close()
    left = json.loads(host.recv_text()[1:])
    assert left["type"] == "player_left" and left["player"] == guest_id


def test_the_queue_before_the_ack_holds_across_nodes(start_node):
    """A player of another node who does not ack event_room_start is dropped past the
    64 queued frames, as on one node (its socket is closed by its own node)."""
    a, b = start_node("a"), start_node("b")
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")
    host, guest = RoomsClient(a), RoomsClient(b)
    host.send({"id": 0, "type": "login", "details": {"username": "hostcid"}})
    host.wait("login_response")
    guest.send({"id": 0, "type": "login", "details": {"username": "guestdan"}})
    guest.wait("login_response")
    host.send({"id": 1, "type": "room_create"})
    invite = host.wait("room_create_response")["inviteId"]
    guest.send({"id": 2, "type": "room_join", "inviteId": invite})
    assert guest.wait("room_join_response")["result"] == "ok"
    host.send({"id": 2, "type": "room_start", "connectionType": "server_broadcast"})
    start = host.wait("event_room_start")
    host.send({"id": 3, "type": "event_room_start_ack", "requestId": start["id"]})
    guest.wait("event_room_start")  # ... and never acks
    for n in range(70):
        host.send_text('{"n":%d}' % n)
    try:
        while True:
            guest.recv_text()
    except (EOFError, ConnectionError):
        pass
    left = json.loads(host.recv_text()[1:])
    assert left["type"] == "player_left"


def test_a_drained_node_lets_its_rooms_players_go_on_elsewhere(start_node):
    """Rolling restart: b is drained (SIGTERM) while its player is in a room of a; the
    player comes back through a, joins the same room with the same code and plays on."""
    import signal

    a, b = start_node("a"), start_node("b")
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")
    host, guest = RoomsClient(a), RoomsClient(b)
    host.send({"id": 0, "type": "login", "details": {"username": "hosteve"}})
    host.wait("login_response")
    guest.send({"id": 0, "type": "login", "details": {"username": "guestfay"}})
    guest.wait("login_response")
    host.send({"id": 1, "type": "room_create"})
    invite = host.wait("room_create_response")["inviteId"]
    guest.send({"id": 2, "type": "room_join", "inviteId": invite})
    assert guest.wait("room_join_response")["result"] == "ok"
    host.wait("event_player_joined")
    b.proc.send_signal(signal.SIGTERM)
    assert b.proc.wait(30) in (0, -signal.SIGTERM), b.log()
    assert host.wait("event_player_left")["player"]
    again = RoomsClient(a)
    again.send({"id": 0, "type": "login", "details": {"username": "guestfay"}})
    again_id = again.wait("login_response")["playerId"]
    again.send({"id": 1, "type": "room_join", "inviteId": invite})
    assert again.wait("room_join_response")["result"] == "ok"
    assert host.wait("event_player_joined")["player"]["id"] == again_id


def test_a_killed_node_leaves_the_rooms_it_took_part_in(start_node):
    """b is SIGKILLed: its player in a room of a leaves it (the host is told as when a
    member disconnects); a's player in a room of b is disconnected (the room is gone) and
    may log in and play again."""
    import signal

    a, b = start_node("a"), start_node("b")
    wait_for(lambda: get(a, "/healthz")[0] == get(b, "/healthz")[0] == 200, "both joined")

    def login(daemon, name):
        client = RoomsClient(daemon)
        client.send({"id": 0, "type": "login", "details": {"username": name}})
        return client, client.wait("login_response")["playerId"]

    def room(host, guest):
        host.send({"id": 1, "type": "room_create"})
        invite = host.wait("room_create_response")["inviteId"]
        guest.send({"id": 2, "type": "room_join", "inviteId": invite})
        assert guest.wait("room_join_response")["result"] == "ok"
        host.wait("event_player_joined")

    host_a, _ = login(a, "hostgil")
    guest_b, guest_b_id = login(b, "guesthal")
    host_b, _ = login(b, "hostivy")
    guest_a, _ = login(a, "guestjo")
    room(host_a, guest_b)
    room(host_b, guest_a)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    assert host_a.wait("event_player_left")["player"] == guest_b_id
    try:
        while True:
            guest_a.recv_text()
    except (EOFError, ConnectionError):
        pass
    again, _ = login(a, "guestjo")
    again.send({"id": 1, "type": "room_create"})
    assert again.wait("room_create_response")["result"] == "ok"
