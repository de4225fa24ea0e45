"""Block Attack over real loopback UDP sockets: `make_service` listening as the daemon does,
the reference client protocol playing a game, and strangers sending junk and spoofs.

Everything runs on the real reactor; the server's clock is the reactor's, so timestamps
are real milliseconds since the epoch.
"""

import json

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor, task

from gamed.blockattack.client import BlockattackClientProtocol
from gamed.blockattack.rules import empty_board
from gamed.blockattack.service import make_service
from gamed.core.config import set_option
from gamed.core.endpoints import UdpService

pytestmark = pytest.mark.sqlite_only


def start(core, **settings):
    settings.setdefault("listen", "udp:0:interface=127.0.0.1")
    for key, value in settings.items():
        core.config = set_option(core.config, "blockattack", key, value)
    top = make_service(core)
    top.startService()
    udp = next(child for child in top if isinstance(child, UdpService))
    return top, ("127.0.0.1", udp.port.getHost().port)


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("timed out")


class Raw(protocol.DatagramProtocol):
    """A bare socket that counts what it sends to and gets from the server."""

    def __init__(self, server):
        self.server = server
        self.sent = 0
        self.received = []

    def send(self, data: bytes):
        self.sent += len(data)
        self.transport.write(data, self.server)

    def datagramReceived(self, data, address):
        self.received.append(data)


def dropped(top, reason):
    return top.game.dropped.labels(reason)._value.get()


@pytest_twisted.ensureDeferred
async def test_two_reference_clients_play_a_game_over_loopback(core):
    top, server = start(core, power_every=100)
    ann = BlockattackClientProtocol("ann", "ben", server, interval=0.02)
    ben = BlockattackClientProtocol("ben", "ann", server, interval=0.02)
    hits = []
    ben.client.on_power = hits.append
    ports = [reactor.listenUDP(0, client, interface="127.0.0.1") for client in (ann, ben)]
    try:
        a, b = ann.client, ben.client
        await until(lambda: a.game_name and b.game_name)
        assert a.game_name == b.game_name and a.next_block == b.next_block
        a.board = empty_board()
        a.board[19][:4] = [1, 1, 1, 1]
        a.score = 250  # earns I and R
        await until(lambda: (b.state or {}).get("opponent_blocks") == a.board)
        assert b.state["opponent_score"] == 250
        await until(lambda: (a.state or {}).get("powers_available") == ["I", "R"])
        a.flux(power_used="I")
        await until(lambda: hits)
        await task.deferLater(reactor, 0.2, lambda: None)  # more replies, same event
        assert [hit["power"] for hit in hits] == ["I"] and len(b.powers_seen) == 1
        game = top.game.games[a.game_name]
        await until(lambda: not game.duel.sides["ben"].incoming)  # acknowledged
        assert b.next_block == hits[0]["shape"] and b.state["next_piece"]["inverted"]
        b.forfeit()
        await until(lambda: a.end is not None and b.end is not None)
        for end in (a.end, b.end):
            assert end["winner"] == "ann" and end["reason"] == "forfeit"
            assert end["score"] == {"ann": 250, "ben": 0}
        assert a.end["elo"] == {"ann": 1016.0, "ben": 984.0}
        rows = await core.ratings.matches(game="blockattack")
        assert rows[0]["reason"] == "forfeit"
        await until(lambda: len(game.end_acked) == 2)
    finally:
        for port in ports:
            await port.stopListening()
        await top.stopService()


@pytest_twisted.ensureDeferred
async def test_junk_strangers_and_spoofs_over_loopback(core):
    top, server = start(core)
    ann = BlockattackClientProtocol("ann", "ben", server, interval=0.02)
    ben = BlockattackClientProtocol("ben", "ann", server, interval=0.02)
    stranger = Raw(server)
    ports = [reactor.listenUDP(0, p, interface="127.0.0.1") for p in (ann, ben, stranger)]
    try:
        a = ann.client
        await until(lambda: a.game_name and ben.client.game_name and a.state)
        for junk in (b"\xff\xfe", b"{", b"[]", b"null", b'{"command": 5}', b"",
                     b'{"command": "connect", "self": "x"}',
                     b'{"command": "game_flux", "game_name": "nope", "timestamp": 1}',
                     b'{"command": "ack", "game_name": 5}', b"x" * 9000):
            stranger.send(junk)
        spoof = json.dumps({"timestamp": 2 ** 62, "command": "game_flux",
                            "game_name": a.game_name, "user_blocks": empty_board(),
                            "user_score": 99999}).encode()
        stranger.send(spoof)  # ann's game, from the wrong address
        stranger.send(json.dumps({"timestamp": 2 ** 62, "command": "forfeit",
                                  "game_name": a.game_name}).encode())
        await until(lambda: dropped(top, "wrong_address") == 2)
        await task.deferLater(reactor, 0.2, lambda: None)
        assert sum(map(len, stranger.received)) <= stranger.sent  # no amplification
        replies = [json.loads(data) for data in stranger.received]
        assert all(reply["command"] == "error" for reply in replies)
        for reason in ("malformed", "unknown_command", "bad_connect", "unknown_game",
                       "oversize"):
            assert dropped(top, reason) >= 1, reason
        game = top.game.games[a.game_name]
        assert not game.duel.finished and game.duel.sides["ann"].score == 0
        assert dropped(top, "internal") == 0
        before = a.state["timestamp"]
        await until(lambda: a.state["timestamp"] > before)  # still playing

        def padded(size, score):  # a valid report from ann's own socket, padded to size
            data = json.dumps({"timestamp": a.timestamp(), "command": "game_flux",
                               "game_name": a.game_name, "user_blocks": empty_board(),
                               "user_score": score}).encode()
            return data + b" " * (size - len(data))

        ann.transport.write(padded(8193, 700), server)  # one byte over: dropped whole
        await until(lambda: dropped(top, "oversize") == 2)
        ann.transport.write(padded(8192, 600), server)  # at the limit: applied
        await until(lambda: game.duel.sides["ann"].score == 600)
    finally:
        for port in ports:
            await port.stopListening()
        await top.stopService()
