"""What uttt shows the web pages and the operator console (gamed.core.live): the count
and list of open matches, ending one (cancelled, unrated, both told), closing an
account's connections."""

import pytest
import pytest_twisted

from gamed.core.live import UnknownMatch

from .test_service import game, clock, players, start  # noqa: F401 - fixtures


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_open_matches_listed_ended_by_the_operator_and_connections_closed(game):
    ann, ben = await players(game, "ann", "ben")
    match_id = await start(ann, ben)
    monitor = game.monitor()
    assert monitor.count() == 1
    (running,) = monitor.running()
    assert running.id == match_id and running.players == ("ann", "ben")
    with pytest.raises(UnknownMatch):
        monitor.end_match("999")
    await monitor.end_match(match_id)
    await game.writer.drained()
    for client in (ann, ben):
        state = client.updates(match_id)[-1]["match_state"]
        assert state["game_over"] is True
    assert monitor.count() == 0 and monitor.running() == []
    recorded = await game.core.ratings.matches(game="uttt")
    assert recorded[0]["reason"] == "cancelled" and recorded[0]["ranked"] is False
    assert monitor.disconnect(ann.handler.player.id) == 1 and ann.channel.closed
    assert not ben.channel.closed
