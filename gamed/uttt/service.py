"""The uttt service: the game (`gamed.uttt.game`) and its listeners, WebSocket and TCP
JSON lines, both serving `gamed.uttt.connection.UtttConnection`."""

from __future__ import annotations

from typing import Optional

from twisted.application import service

from gamed.store.uttt import GAME, UtttStore
from gamed.uttt.connection import UtttConnection
from gamed.uttt.game import UtttGame
from gamed.uttt.live import Tuning
from gamed.uttt.settings import UtttSettings

__all__ = ["make_service", "Tuning", "UtttConnection", "UtttGame"]


def make_service(core, clock=None, tuning: Optional[Tuning] = None,
                 settings: Optional[UtttSettings] = None) -> service.IService:
    """The uttt game and its listeners (WebSocket and TCP JSON lines) on its [uttt]
    section (the core's config when none is given: tests)."""
    settings = settings if settings is not None else core.config.uttt
    top = service.MultiService()
    top.setName("uttt")
    game = UtttGame(core, UtttStore(core.database), clock, tuning, settings)
    game.setServiceParent(top)
    top.game = game
    core.live.register(GAME, game.monitor())

    def handler():
        return UtttConnection(game)

    for endpoint, websocket in ((settings.websocket, True), (settings.listen, False)):
        listener = core.stream_listeners(GAME, endpoint, handler, settings, websocket=websocket)
        if listener is not None:
            listener.setServiceParent(top)
    return top
