"""uttt over real loopback sockets: a WebSocket client and a TCP JSON-lines client play
each other through the core's adapters, and the wire-level failures (bad frames, binary
frames, floods, clients that vanish) get the protocol's own replies.

The clients are blocking sockets run in threads; the daemon side is the real reactor.
"""

import json
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads
from twisted.internet.endpoints import TCP4ServerEndpoint

from gamed.core.lines import JsonLinesFactory
from gamed.core.settings import StreamLimits
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import websocket_factory
from gamed.store.uttt import UtttStore
from gamed.uttt.connection import UtttConnection
from gamed.uttt.game import UtttGame

from .test_service import WINNING_GAME

pytestmark = pytest.mark.sqlite_only


class LinesClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.pending = []

    def send_text(self, text):
        self.sock.sendall(text.encode("utf-8") + b"\n")

    def send(self, type_, data):
        self.send_text(json.dumps({"type": type_, "data": data}))

    def recv(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        self.sock.close()


class WsClient:
    def __init__(self, port, path="/ws/any?x=1"):
        import websocket

        self.ws = websocket.create_connection("ws://127.0.0.1:%d%s" % (port, path), timeout=5)
        self.pending = []

    def send_text(self, text):
        self.ws.send(text)

    def send(self, type_, data):
        self.send_text(json.dumps({"type": type_, "data": data}))

    def recv(self):
        return json.loads(self.ws.recv())

    def close(self):
        self.ws.close()


def wait_for(client, type_, pred=lambda d: True):
    for i, message in enumerate(client.pending):
        if message["type"] == type_ and pred(message["data"]):
            return client.pending.pop(i)["data"]
    while True:
        message = client.recv()
        if message["type"] == type_ and pred(message["data"]):
            return message["data"]
        client.pending.append(message)


@pytest.fixture
def listeners(core):
    """(game, ws port, lines port) with the uttt handler behind both real adapters."""
    limits = StreamLimits(rate=50.0, burst=20, flood_close_after=40)
    game = UtttGame(core, UtttStore(core.database))
    game.startService()
    stats = core.metrics.service("uttt")
    ports = []
    for transport, make in (("websocket", websocket_factory), ("lines", JsonLinesFactory)):
        endpoint = StreamEndpoint("uttt", transport, lambda: UtttConnection(game), limits,
                                  reactor, stats)
        ports.append(pytest_twisted.blockon(
            TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make(endpoint))))
    yield game, ports[0].getHost().port, ports[1].getHost().port
    for port in ports:
        pytest_twisted.blockon(port.stopListening())
    pytest_twisted.blockon(game.stopService())


@pytest_twisted.ensureDeferred
async def test_a_websocket_player_and_a_lines_player_play_a_whole_game(listeners):
    game, ws_port, lines_port = listeners

    def play():
        a, b = WsClient(ws_port), LinesClient(lines_port)
        try:
            a.send("temp_session", {"name": "wire_ws"})
            assert wait_for(a, "login_response")["success"] is True
            b.send("login", {"name": "wire_lines", "pw": ""})
            assert wait_for(b, "login_response")["registered"] is False
            a.send("match_request", {"player": "Wire_Lines"})
            assert wait_for(a, "match_request_response")["success"] is True
            match_id = wait_for(b, "match_update")["id"]
            wait_for(a, "match_update")
            for index, move in enumerate(WINNING_GAME):
                mover = (a, b)[index % 2]
                mover.send("move", dict(zip(("sub_x", "sub_y", "x", "y"),
                                            map(str, move)), id=match_id))
                states = [wait_for(c, "match_update", lambda d: d["id"] == match_id)
                          ["match_state"] for c in (a, b)]
                assert states[0] == states[1]
            return states[0]
        finally:
            a.close()
            b.close()

    final = await threads.deferToThread(play)
    assert final["game_over"] is True and final["player_won"] == "wire_ws"
    assert game.matches == {}


@pytest_twisted.ensureDeferred
async def test_bad_frames_get_uttt_error_frames_and_the_connection_stays(listeners):
    _, ws_port, lines_port = listeners

    def poke(make, port):
        client = make(port)
        replies = []
        for text in ("not json", "[1, 2]", '{"type": "move"}', '{"data": {}}',
                     '{"type": "no_such_type", "data": {}}',
                     '{"type": "move", "data": {"id": 5, "sub_x": "a", "sub_y": [], "x": null}}'):
            client.send_text(text)
            replies.append(client.recv())
        client.send("temp_session", {})
        replies.append(wait_for(client, "login_response"))
        client.close()
        return replies

    for make, port in ((WsClient, ws_port), (LinesClient, lines_port)):
        replies = await threads.deferToThread(poke, make, port)
        for reply in replies[:-1]:
            assert set(reply) == {"type", "data"} and reply["data"]["success"] is False
        assert [r["type"] for r in replies[:2]] == ["error", "error"]
        assert replies[-1]["success"] is True


@pytest_twisted.ensureDeferred
async def test_binary_websocket_frames_are_refused(listeners):
    _, ws_port, _ = listeners

    def binary():
        client = WsClient(ws_port)
        client.ws.send_binary(b'{"type": "temp_session", "data": {}}')
        reply = client.recv()
        client.close()
        return reply

    reply = await threads.deferToThread(binary)
    assert reply["type"] == "error" and reply["data"]["error"] == "binary"


@pytest_twisted.ensureDeferred
async def test_a_flood_is_refused_in_the_protocols_shape_then_closed(listeners):
    _, _, lines_port = listeners

    def flood():
        client = LinesClient(lines_port)
        client.send("temp_session", {"name": "flooder"})
        wait_for(client, "login_response")
        client.sock.sendall(b'{"type": "match_states_request", "data": {}}\n' * 200)
        replies = []
        try:
            while True:
                replies.append(client.recv())
        except (ConnectionError, OSError):
            pass
        client.close()
        return replies

    replies = await threads.deferToThread(flood)
    limited = [r for r in replies if r["data"].get("error") == "rate_limited"]
    assert limited and limited[0]["type"] == "error"
    assert replies[-1]["data"]["error"] == "flood"


@pytest_twisted.ensureDeferred
async def test_a_client_that_vanishes_leaves_the_queue_and_goes_offline(listeners):
    game, ws_port, _ = listeners

    def vanish():
        client = WsClient(ws_port)
        client.send("temp_session", {"name": "vanisher"})
        wait_for(client, "login_response")
        client.send("match_request", {"player": None})
        wait_for(client, "match_request_response")
        client.ws.sock.close()  # no close frame, no goodbye

    await threads.deferToThread(vanish)
    for _ in range(300):
        if not game.waiting and not game.connections:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    assert game.waiting == {} and game.connections == {}
    assert not game.presence.is_online(1, "uttt")
