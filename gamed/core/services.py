"""Service-tree helpers."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="gamed.services")


class SequentialMultiService(service.MultiService):
    """Stops its children one after another, newest first, each awaited (MultiService
    stops them all at once): a game finishes recording before its listener or the
    database goes away."""

    def stopService(self):
        return defer.ensureDeferred(self._stop_in_order())

    async def _stop_in_order(self):
        service.Service.stopService(self)
        for child in reversed(list(self)):
            try:
                await defer.maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {child} failed", child=getattr(child, "name", child))
