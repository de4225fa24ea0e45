"""A novaglide client that leaves at any step of its flow is not an error: its replies,
the states of its match and the result are dropped quietly and nothing is logged at error
level (the leaver sends its request and closes the socket at once)."""

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads

from gamed.core.config import set_option
from gamed.core.testing import ErrorLog
from gamed.novaglide.service import make_service

from .test_wire import LineClient

pytestmark = pytest.mark.sqlite_only


def flow(port, upto, tag):
    """The leaver L and a partner P; L leaves right after sending step `upto`."""
    p = LineClient(port)
    p.send("log_in_data", ["p%s" % tag, "pw"])
    p.until("change_of_status")
    l = LineClient(port)
    steps = [
        ("log_in_data", ["l%s" % tag, "pw"], "change_of_status"),
        ("get_elo", ["l%s" % tag], None),
        ("get_challengers", ["no_data"], None),
        ("queued_solo", ["no_data"], "Waiting_for_opponent"),
        ("ingame", [[640, 360], ["d"], "wasd"], None),
    ]
    for index, (flag, data, want) in enumerate(steps[:upto + 1]):
        l.send(flag, data)
        if index == upto:
            l.close()
            break
        if flag == "queued_solo":  # the partner joins: the match starts
            l.until(want)
            p.send("queued_solo", ["no_data"])
            l.until("game_state_1")
        elif want is not None:
            l.until(want)
    p.send("queued_solo", ["no_data"])  # a partner left in a match is refused, or queued
    p.send("get_elo", ["p%s" % tag])
    p.until("client_elo")
    p.close()
    return len(steps)


@pytest_twisted.ensureDeferred
async def test_a_client_leaving_at_any_step_logs_no_error(core):
    core.config = set_option(core.config, "novaglide", "listen", "tcp:0:interface=127.0.0.1")
    # a match whose player left ends (forfeit, ratings, a result to the gone player) soon
    core.config = set_option(core.config, "novaglide", "rejoin_grace", 0.2)
    top = make_service(core)
    top.startService()
    stats = core.metrics.service("novaglide")
    try:
        listener = [child for child in top if child is not top.game][0]
        port = (await listener._waitingForPort).getHost().port
        with ErrorLog() as errors:
            upto, count = 0, 1
            while upto < count:
                count = await threads.deferToThread(flow, port, upto, "%d" % upto)
                upto += 1
            for _ in range(1000):
                if not any(stats.connections.values()) and not top.game.match_of:
                    break
                await task.deferLater(reactor, 0.01, lambda: None)
        assert errors.lines() == []
        assert count == 5 and stats.connections_total == 2 * count
        assert not any(stats.connections.values()) and not top.game.match_of
    finally:
        await top.stopService()
