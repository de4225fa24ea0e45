"""The HTTP listener as a service (and, while it runs, the log observer that keeps the
recent warnings and errors /admin shows, and the pages' own read-only database on
SQLite)."""

from __future__ import annotations

from twisted.application import service
from twisted.logger import globalLogPublisher

from gamed.core.endpoints import stream_service
from gamed.web.reads import PageReads, ReaderService, reader_database
from gamed.web.recentlog import RecentProblems
from gamed.web.resources import make_site


class RecentProblemsService(service.Service):
    def __init__(self, recent: RecentProblems):
        self.recent = recent

    def startService(self):
        service.Service.startService(self)
        globalLogPublisher.addObserver(self.recent)

    def stopService(self):
        service.Service.stopService(self)
        globalLogPublisher.removeObserver(self.recent)


def make_service(core):
    endpoint = core.config.http.listen
    if not endpoint:
        return None
    recent = RecentProblems()
    top = service.MultiService()
    top.setName("http")
    RecentProblemsService(recent).setServiceParent(top)
    reader = reader_database(core)
    ReaderService(reader, own=reader is not core.database).setServiceParent(top)
    stream_service(core.reactor, endpoint, make_site(core, recent, PageReads(reader)),
                   core.shared_sockets).setServiceParent(top)
    return top
