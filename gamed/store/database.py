"""The one database pool: adbapi underneath, named transactions on top.

Every query runs inside `run_interaction(description, func, *args)`, where `func` gets a
`Cursor` that speaks `?` placeholders on every engine. The description names the
transaction in logs and in the latency histogram.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.logger import Logger

from gamed.store.engines import Engine, create_engine

log = Logger(namespace="gamed.store")


class IntegrityError(Exception):
    """A constraint was violated (unique name, foreign key); engine-neutral."""


class Cursor:
    """A DB-API cursor that takes `?` placeholders whatever the engine."""

    __slots__ = ("_cursor", "engine")

    def __init__(self, cursor, engine: Engine):
        self._cursor = cursor
        self.engine = engine

    def execute(self, sql: str, args: tuple | list = ()) -> "Cursor":
        try:
            self._cursor.execute(self.engine.convert_sql(sql), tuple(args))
        except self.engine.module.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        return self

    def executemany(self, sql: str, rows) -> "Cursor":
        try:
            self._cursor.executemany(self.engine.convert_sql(sql), [tuple(r) for r in rows])
        except self.engine.module.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        return self

    def insert(self, sql: str, args: tuple | list = ()) -> int:
        """Run an INSERT into a table with an `id` key and return the new id."""
        if self.engine.name == "postgresql":
            self.execute(sql + " RETURNING id", args)
            return self._cursor.fetchone()[0]
        self.execute(sql, args)
        return self._cursor.lastrowid

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    def scalar(self, sql: str, args: tuple | list = (), default: Any = None) -> Any:
        row = self.execute(sql, args).fetchone()
        return default if row is None else row[0]

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class Database:
    """adbapi.ConnectionPool wrapped so that stores never see the engine."""

    def __init__(self, url: str, pool_size: int = 5, connect_timeout: float = 5.0,
                 metrics=None, reactor=None):
        self.engine = create_engine(url, pool_size, connect_timeout)
        self.metrics = metrics
        kwargs = self.engine.connect_kwargs()
        size = self.engine.max_connections
        extra = {}
        if reactor is not None:
            extra["cp_reactor"] = reactor
        self.pool = adbapi.ConnectionPool(
            self.engine.module.__name__, cp_min=1, cp_max=size, cp_noisy=False,
            cp_openfun=self.engine.on_new_connection,
            cp_reconnect=self.engine.name == "postgresql", **extra, **kwargs)
        self._latency = metrics.db_query_seconds if metrics is not None else None

    @property
    def name(self) -> str:
        return self.engine.name

    def run_interaction(self, description: str, func: Callable[..., Any], *args,
                        **kwargs) -> defer.Deferred:
        """Run func(cursor, *args, **kwargs) in one transaction on a pool thread."""
        return self.pool.runWithConnection(self._transaction, description, func, args, kwargs)

    def _transaction(self, connection, description, func, args, kwargs):
        started = time.monotonic()
        raw = connection.cursor()
        try:
            if self.engine.name == "sqlite":
                raw.execute("BEGIN IMMEDIATE")
            result = func(Cursor(raw, self.engine), *args, **kwargs)
            connection.commit()
            return result
        except BaseException:
            try:
                connection.rollback()
            except Exception:  # the connection may be gone; adbapi reconnects
                log.failure("rollback of {description} failed", description=description)
            raise
        finally:
            raw.close()
            if self._latency is not None:
                self._latency.labels(description).observe(time.monotonic() - started)

    def ping(self) -> defer.Deferred:
        return self.run_interaction("ping", lambda cur: cur.scalar("SELECT 1"))

    def start(self) -> None:
        """Start the pool's threads now (otherwise when the reactor starts)."""
        self.pool.start()

    def close(self) -> None:
        if self.pool.running:
            self.pool.close()


def blocking_connect(engine: Engine):
    """A plain DB-API connection, for the admin CLI and start-up checks outside a reactor."""
    connection = engine.module.connect(**engine.connect_kwargs())
    engine.on_new_connection(connection)
    return connection


def run_blocking(engine: Engine, func: Callable, *args, connection=None) -> Any:
    """Run func(cursor, *args) in one transaction on a blocking connection."""
    own = connection is None
    connection = connection or blocking_connect(engine)
    raw = connection.cursor()
    try:
        if engine.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        result = func(Cursor(raw, engine), *args)
        connection.commit()
        return result
    except BaseException:
        connection.rollback()
        raise
    finally:
        raw.close()
        if own:
            connection.close()

