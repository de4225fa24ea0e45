"""A Block Attack player that leaves (its socket closed) at any step is not an error: the
server's datagrams to it go nowhere, the silence timeout ends its game, the opponent is
told, and nothing is logged at error level."""

import pytest
import pytest_twisted
from twisted.internet import reactor

from gamed.blockattack import service
from gamed.blockattack.client import BlockattackClientProtocol
from gamed.core.testing import ErrorLog

from .test_wire import start, until

pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize("step", ["waiting", "paired", "playing"])
@pytest_twisted.ensureDeferred
async def test_a_player_leaving_at_any_step_logs_no_error(core, step, monkeypatch):
    monkeypatch.setattr(service, "TIMER_INTERVAL", 0.05)  # timeouts checked at once
    top, server = start(core, silence_timeout=0.3, connect_timeout=0.3)
    game = top.game
    try:
        with ErrorLog() as errors:
            ann = BlockattackClientProtocol("ann", "ben", server, interval=0.02)
            ann_port = reactor.listenUDP(0, ann, interface="127.0.0.1")
            ben = BlockattackClientProtocol("ben", "ann", server, interval=0.02)
            if step == "waiting":
                # ann leaves while she waits: her wait times out, its answer goes nowhere
                await until(lambda: game.waiting)
                await ann_port.stopListening()
                await until(lambda: not game.waiting)
                ben_port = reactor.listenUDP(0, ben, interface="127.0.0.1")
                await until(lambda: game.waiting)  # ben waits for ann, then leaves too
                await ben_port.stopListening()
                await until(lambda: not game.waiting)
                assert not game.games
                ben_port = None
            else:
                ben_port = reactor.listenUDP(0, ben, interface="127.0.0.1")
                await until(lambda: ann.client.game_name and ben.client.game_name)
                if step == "playing":
                    await until(lambda: (ben.client.state or {}).get("opponent_blocks")
                                is not None)
                await ann_port.stopListening()
                # ben plays on until the silence timeout ends the game ann left
                await until(lambda: all(g.duel.finished for g in game.games.values()),
                            timeout=10)
                assert len(game.games) == 1
            if ben_port is not None:
                await ben_port.stopListening()
        assert errors.lines() == []
    finally:
        await top.stopService()
