"""A uttt client that leaves at any step of its flow is not an error: the replies, match
updates and Elo updates meant for it are dropped quietly, and nothing is logged at error
level (the WebSocket client leaves with a close frame, the JSON-lines one by closing the
socket, each right after sending its request)."""

import gc

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import TCP4ServerEndpoint

from gamed.core.lines import JsonLinesFactory
from gamed.core.settings import StreamLimits
from gamed.core.testing import ErrorLog
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import websocket_factory
from gamed.store.uttt import UtttStore
from gamed.uttt.connection import UtttConnection
from gamed.uttt.game import UtttGame

from .test_service import WINNING_GAME
from .test_wire import LinesClient, WsClient, wait_for

pytestmark = pytest.mark.sqlite_only


def move_data(match_id, index):
    return dict(zip(("sub_x", "sub_y", "x", "y"), map(str, WINNING_GAME[index])), id=match_id)


class Flow:
    """The leaver L (registered) against a partner P on JSON lines; L's requests in order,
    each run to its reply except the last, after which L leaves at once."""

    def __init__(self, make, port, lines_port, tag):
        self.make, self.port, self.lines_port = make, port, lines_port
        self.l_name, self.p_name = "leaver%s" % tag, "partner%s" % tag
        self.match_id = None

    def steps(self):
        """(name, send(L, P), wait(L, P)) for each step of L's flow."""
        def login(l, p):
            l.send("login", {"name": self.l_name, "pw": "secret"})

        def invite(l, p):
            l.send("match_request", {"player": self.p_name})

        def invited(l, p):
            wait_for(l, "match_request_response")
            self.match_id = wait_for(p, "match_update")["id"]

        def moves_to(last):
            def play(l, p):
                for index in range(last):
                    mover = (l, p)[index % 2]
                    mover.send("move", move_data(self.match_id, index))
                    for client in (l, p):
                        wait_for(client, "match_update", lambda d: d["id"] == self.match_id)
                l.send("move", move_data(self.match_id, last))
            return play

        steps = [
            ("login", login, lambda l, p: wait_for(l, "login_response")),
            ("random match", lambda l, p: l.send("match_request", {"player": None}),
             lambda l, p: wait_for(l, "match_request_response")),
            ("invite", invite, invited),
            ("first move", moves_to(0), None),
            ("winning move", moves_to(len(WINNING_GAME) - 1), None),
            ("friend", lambda l, p: l.send("friend_request", {"user": self.p_name}), None),
            ("match states", lambda l, p: l.send("match_states_request", {}), None),
        ]
        return steps

    def run(self, upto):
        """L goes through the steps before `upto`, sends step `upto` and leaves."""
        p = LinesClient(self.lines_port)
        p.send("login", {"name": self.p_name, "pw": "secret"})
        wait_for(p, "login_response")
        l = self.make(self.port)
        for index, (_, send, wait) in enumerate(self.steps()[:upto + 1]):
            send(l, p)
            if index == upto:
                l.close()
                break
            if wait is not None:
                wait(l, p)
        if self.match_id is not None:  # the partner plays on and ends the match
            p.send("match_states_request", {})
            p.send("end_match", {"id": self.match_id})
        p.send("friend_request", {"user": self.l_name})
        wait_for(p, "friend_request_response")
        p.close()


@pytest.fixture
def listeners(core):
    limits = StreamLimits(rate=500.0, burst=200, flood_close_after=400)
    game = UtttGame(core, UtttStore(core.database))
    game.startService()
    handlers = []

    def handler():
        handlers.append(UtttConnection(game))
        return handlers[-1]

    stats = core.metrics.service("uttt")
    endpoints, ports = [], []
    for transport, make in (("websocket", websocket_factory), ("lines", JsonLinesFactory)):
        endpoints.append(StreamEndpoint("uttt", transport, handler, limits, reactor, stats))
        ports.append(pytest_twisted.blockon(
            TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make(endpoints[-1]))))
    yield game, endpoints, handlers, ports[0].getHost().port, ports[1].getHost().port
    for port in ports:
        pytest_twisted.blockon(port.stopListening())
    pytest_twisted.blockon(game.stopService())


async def settled(endpoints, handlers, game):
    """Every connection closed on the server and every request it was serving finished."""
    for _ in range(500):
        if all(endpoint.open == 0 for endpoint in endpoints):
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    assert [endpoint.open for endpoint in endpoints] == [0, 0]
    await defer.gatherResults([handler.idle() for handler in handlers])
    await game.writer.drained()
    gc.collect()  # an unhandled error in a dropped Deferred is logged when it is collected


@pytest.mark.parametrize("transport", ["websocket", "lines"])
@pytest_twisted.ensureDeferred
async def test_a_client_leaving_at_any_step_logs_no_error(listeners, transport):
    game, endpoints, handlers, ws_port, lines_port = listeners
    make, port = (WsClient, ws_port) if transport == "websocket" else (LinesClient, lines_port)
    with ErrorLog() as errors:
        count = len(Flow(make, port, lines_port, "").steps())
        for upto in range(count):
            flow = Flow(make, port, lines_port, "%s%d" % (transport[0], upto))
            await threads.deferToThread(flow.run, upto)
        await settled(endpoints, handlers, game)
    assert errors.lines() == []
    assert len(handlers) == 2 * count
