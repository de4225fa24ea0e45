"""Where the pages read: the stores over a database of their own.

On SQLite the daemon has one connection, which every game's writes use; pages reading
through it would queue behind those writes (and the writes behind the pages). So the
pages get a second, read-only `Database` on the same file: SQLite's WAL lets it read the
last committed state beside the writer. PostgreSQL's pool already reads in parallel: the
pages share it.
"""

from __future__ import annotations

from twisted.application import service

from gamed.store.accounts import AccountStore, find_txn
from gamed.store.database import Database
from gamed.store.ranks import RankIndex
from gamed.store.ratings import RatingStore, player_page_txn
from gamed.store.uttt import UtttStore


class PageReads:
    def __init__(self, database: Database):
        self.database = database
        #: every game's leaderboard order in memory: a page's ranks without counting
        self.ranks = RankIndex()
        self.ratings = RatingStore(database, ranks=self.ranks)
        self.accounts = AccountStore(database)
        self.uttt = UtttStore(database)

    def find_account(self, name: str):
        return self.accounts.find(name)

    def player_page(self, name: str, limit: int, before_id, points: int):
        """(Account, ratings_ranked, history, chart points) of the player called `name`,
        in one transaction (one trip to a database thread), or None when nobody is."""
        def read(cur):
            account = find_txn(cur, name)
            if account is None:
                return None
            return (account, *player_page_txn(cur, account.id, limit, before_id, points,
                                              self.ranks))

        return self.database.run_read("player_page", read)


def reader_database(core) -> Database:
    """A read-only Database for the pages on SQLite; the core's own otherwise."""
    main = core.database
    if main.name != "sqlite":
        return main
    settings = core.config.database
    return Database("sqlite:///" + main.engine.url.path, 1, settings.connect_timeout,
                    metrics=core.metrics, reactor=core.reactor,
                    query_timeout=main.query_timeout, read_only=True)


class ReaderService(service.Service):
    """Starts and closes the pages' own database (when they have one)."""

    def __init__(self, database: Database, own: bool):
        self.database = database
        self.own = own

    def startService(self):
        service.Service.startService(self)
        if self.own:
            self.database.start()

    def stopService(self):
        service.Service.stopService(self)
        if self.own:
            self.database.close()
