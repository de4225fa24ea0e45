"""The one database pool: adbapi underneath, named transactions on top.

Every query runs inside `run_interaction(description, func, *args)`, where `func` gets a
`Cursor` that speaks `?` placeholders on every engine. The description names the
transaction in logs and in the latency histogram.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from twisted.enterprise import adbapi
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from gamed.store.engines import Engine, create_engine

log = Logger(namespace="gamed.store")


class IntegrityError(Exception):
    """A constraint was violated (unique name, foreign key); engine-neutral."""


class Cursor:
    """A DB-API cursor that takes `?` placeholders whatever the engine."""

    __slots__ = ("_cursor", "engine", "statements")

    def __init__(self, cursor, engine: Engine):
        self._cursor = cursor
        self.engine = engine
        #: statements that went through (a transaction that died before its first may
        #: be tried again on a new connection: nothing of it reached the server)
        self.statements = 0

    def execute(self, sql: str, args: tuple | list = ()) -> "Cursor":
        try:
            self._cursor.execute(self.engine.convert_sql(sql), tuple(args))
        except self.engine.module.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        self.statements += 1
        return self

    def executemany(self, sql: str, rows) -> "Cursor":
        try:
            self._cursor.executemany(self.engine.convert_sql(sql), [tuple(r) for r in rows])
        except self.engine.module.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        self.statements += 1
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

    def close(self) -> None:
        try:
            self._cursor.close()
        except Exception:  # noqa: BLE001 - closing a cursor of a dead connection
            pass


class DatabaseUnavailable(Exception):
    """The database cannot be reached, lost the connection, or did not answer in time:
    nothing was done (or, for a write cut off at its commit, it may have been: results
    carry keys for that). Games answer it with their protocol's `unavailable` error."""


class _Job:
    """One interaction on its way to a pool thread; `abandoned` once nobody waits for it
    (a read past its deadline), so a backlog built up while the database was slow is
    not run for nothing."""

    __slots__ = ("abandoned",)

    def __init__(self):
        self.abandoned = False


class Database:
    """adbapi.ConnectionPool wrapped so that stores never see the engine.

    The pool gives each thread its own connection; this class runs the transaction on it
    and handles a lost database itself: a connection that died is dropped (the next
    transaction on that thread connects again), a transaction that failed on its first
    statement because its connection had died meanwhile is tried once more on a new one,
    and every other loss is a `DatabaseUnavailable`. Reads (`run_read`) give up after
    `query_timeout`; writes are always waited for (the thread would still commit them).
    """

    def __init__(self, url: str, pool_size: int = 5, connect_timeout: float = 5.0,
                 metrics=None, reactor=None, query_timeout: float = 5.0,
                 read_only: bool = False):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        #: only reads: on SQLite a plain (deferred) BEGIN, so a second Database on the same
        #: file reads beside the writer (WAL) instead of queueing for its lock
        self.read_only = read_only
        self.engine = create_engine(url, pool_size, connect_timeout)
        self.metrics = metrics
        self.query_timeout = query_timeout
        kwargs = self.engine.connect_kwargs()
        self.pool = adbapi.ConnectionPool(
            self.engine.module.__name__, cp_min=1, cp_max=self.engine.max_connections,
            cp_noisy=False, cp_openfun=self.engine.on_new_connection, cp_reconnect=False,
            cp_reactor=reactor, **kwargs)
        self._latency = metrics.db_query_seconds if metrics is not None else None
        #: why the database is unavailable (None while it answers), and since when
        self.unavailable: Optional[str] = None
        self.unavailable_since = 0.0

    @property
    def name(self) -> str:
        return self.engine.name

    def run_interaction(self, description: str, func: Callable[..., Any], *args,
                        **kwargs) -> defer.Deferred:
        """Run func(cursor, *args, **kwargs) in one transaction on a pool thread, and wait
        for it however long it takes (writes)."""
        return self._run(description, func, args, kwargs, None)

    def run_read(self, description: str, func: Callable[..., Any], *args,
                 **kwargs) -> defer.Deferred:
        """Like run_interaction, but fails with DatabaseUnavailable when no answer came
        within `query_timeout` seconds (lookups a player is waiting for)."""
        return self._run(description, func, args, kwargs, self.query_timeout)

    def _run(self, description, func, args, kwargs, timeout) -> defer.Deferred:
        job = _Job()
        d = threads.deferToThreadPool(self.reactor, self.pool.threadpool, self._transaction,
                                      job, description, func, args, kwargs)
        d.addCallbacks(self._answered, self._failed)
        if not timeout:
            return d
        result = defer.Deferred()

        def late():
            job.abandoned = True
            problem = "the database did not answer within %g s" % timeout
            self._went_away(problem)
            result.errback(DatabaseUnavailable(problem))

        call = self.reactor.callLater(timeout, late)

        def answered(value):
            if call.active():
                call.cancel()
                if isinstance(value, Failure):
                    result.errback(value)
                else:
                    result.callback(value)
            elif isinstance(value, Failure) and not value.check(DatabaseUnavailable):
                log.failure("{description} failed after its caller gave up", value,
                            description=description)

        d.addBoth(answered)
        return result

    def _answered(self, answer):
        value, reached = answer
        if self.unavailable is not None and reached:
            log.info("database available again after {seconds:.1f} s",
                     seconds=self.reactor.seconds() - self.unavailable_since)
            self.unavailable = None
        return value

    def _failed(self, failure):
        if failure.check(DatabaseUnavailable) and not failure.value.args[0] == ABANDONED:
            self._went_away(failure.getErrorMessage())
        return failure

    def _went_away(self, problem: str) -> None:
        if self.unavailable is None:
            log.warn("database unavailable: {problem}", problem=problem)
            self.unavailable_since = self.reactor.seconds()
        self.unavailable = problem

    # -- on a pool thread ---------------------------------------------------------------------

    def _transaction(self, job, description, func, args, kwargs):
        if job.abandoned:
            raise DatabaseUnavailable(ABANDONED)
        started = time.monotonic()
        try:
            for attempt in (1, 2):
                try:
                    connection = self.pool.connect()
                except Exception as exc:
                    raise DatabaseUnavailable(problem_of(exc)) from None
                cursor = None
                try:
                    cursor = Cursor(connection.cursor(), self.engine)
                    if self.engine.name == "sqlite":
                        cursor.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
                    result = func(cursor, *args, **kwargs)
                    connection.commit()
                    # (result, whether the database was reached: a transaction that ran
                    # no statement says nothing about it)
                    return result, cursor.statements > 0
                except BaseException as exc:
                    try:
                        connection.rollback()
                    except Exception:  # noqa: BLE001 - the connection may be gone
                        pass
                    if not self.engine.connection_lost(connection, exc):
                        raise
                    self.pool.disconnect(connection)  # this thread connects anew next time
                    if attempt == 1 and (cursor is None or not cursor.statements):
                        continue  # it died while idle: nothing was sent, try a new one
                    raise DatabaseUnavailable(problem_of(exc)) from None
                finally:
                    if cursor is not None:
                        cursor.close()
        finally:
            if self._latency is not None:
                self._latency.labels(description).observe(time.monotonic() - started)

    def ping(self, timeout: Optional[float] = None) -> defer.Deferred:
        """SELECT 1, failing with DatabaseUnavailable past `timeout` (query_timeout)."""
        return self._run("ping", lambda cur: cur.scalar("SELECT 1"), (), {},
                         timeout or self.query_timeout)

    def start(self) -> None:
        """Start the pool's threads now (otherwise when the reactor starts)."""
        self.pool.start()

    def close(self) -> None:
        if self.pool.running:
            self.pool.close()


ABANDONED = "abandoned: its caller gave up waiting"


def problem_of(exc: BaseException) -> str:
    """The first line of a driver error: what an operator needs in one log line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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

