"""SQLite and PostgreSQL differences, kept in two small engine classes.

Stores write SQL with `?` placeholders and portable types; the engine converts the
placeholder style, expands schema tokens, opens connections and sets the pragmas.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs


@attrs.frozen
class DatabaseUrl:
    scheme: str  # "sqlite" or "postgresql"
    path: str = ""  # sqlite file
    user: str = ""
    password: str = ""
    host: str = ""
    port: int = 5432
    dbname: str = ""


def parse_database_url(url: str) -> DatabaseUrl:
    """sqlite:///PATH or postgresql://USER[:PW]@HOST[:PORT]/DB; ValueError otherwise."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError("sqlite:/// needs a file path")
        if path != ":memory:" and not path.startswith("/"):
            path = os.path.abspath(path)
        return DatabaseUrl("sqlite", path=path)
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not dbname:
            raise ValueError("%r names no database" % redacted(url))
        try:
            port = parts.port or 5432
        except ValueError:
            raise ValueError("bad port in %r" % redacted(url)) from None
        return DatabaseUrl("postgresql", user=unquote(parts.username or ""),
                           password=unquote(parts.password or ""),
                           host=parts.hostname or "", port=port, dbname=dbname)
    raise ValueError("unsupported database URL %r (use sqlite:///PATH or "
                     "postgresql://USER@HOST:PORT/DB)" % redacted(url))


def redacted(url: str) -> str:
    """The URL as it may be shown: a password in it becomes *** (even one holding a raw
    '/', '#' or '?', which a URL parser would not see as a password)."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@]*@", r"\1:***@", url)


class Engine:
    """The interface of an engine; see the two implementations."""

    name = "?"
    module: Any = None
    max_connections = 1
    #: tokens in schema files
    schema_tokens: dict[str, str] = {}

    def __init__(self, url: DatabaseUrl):
        self.url = url

    def connect_kwargs(self) -> dict:
        raise NotImplementedError

    def on_new_connection(self, connection) -> None:
        """Per-connection settings (pragmas, isolation)."""

    def convert_sql(self, sql: str) -> str:
        return sql

    def expand_schema(self, text: str) -> str:
        for token, value in self.schema_tokens.items():
            text = text.replace(token, value)
        return text

    def connection_lost(self, connection, exc: BaseException) -> bool:
        """Whether `exc` (raised in a transaction on `connection`) means the database
        went away rather than that the transaction was refused."""
        return False

    def is_integrity_error(self, failure_value: BaseException) -> bool:
        return isinstance(failure_value, self.module.IntegrityError)

    def describe(self) -> str:
        return self.name


class Sqlite3Engine(Engine):
    name = "sqlite"
    module = sqlite3
    max_connections = 1  # one writer: SQLite serialises writes anyway
    schema_tokens = {"$SERIAL_PK": "INTEGER PRIMARY KEY AUTOINCREMENT", "$REAL": "REAL",
                     "$TEXT_KEY": "TEXT"}

    def connect_kwargs(self) -> dict:
        path = self.url.path
        if path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return {"database": path, "check_same_thread": False, "isolation_level": None,
                "timeout": 30}

    def on_new_connection(self, connection) -> None:
        # isolation_level=None: the pool's BEGIN/COMMIT are ours (see Database)
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # turning a new file to WAL needs it alone: SQLite answers "locked" at once, without
        # its busy wait, while another connection (a second migrator) holds it
        deadline = time.monotonic() + 30.0
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL: durable across a process crash; a power loss may drop the last
        # transactions but never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def describe(self) -> str:
        return "sqlite:%s" % self.url.path


class PostgresEngine(Engine):
    name = "postgresql"
    schema_tokens = {"$SERIAL_PK": "BIGSERIAL PRIMARY KEY", "$REAL": "DOUBLE PRECISION",
                     "$TEXT_KEY": "TEXT"}
    _placeholder = re.compile(r"\?")

    def __init__(self, url: DatabaseUrl, pool_size: int = 5, connect_timeout: float = 5.0):
        super().__init__(url)
        import psycopg2

        self.module = psycopg2
        self.max_connections = max(1, pool_size)
        self.connect_timeout = connect_timeout

    def connect_kwargs(self) -> dict:
        kwargs = {"dbname": self.url.dbname, "connect_timeout": max(1, int(self.connect_timeout))}
        if self.url.user:
            kwargs["user"] = self.url.user
        if self.url.password:
            kwargs["password"] = self.url.password
        if self.url.host:
            kwargs["host"] = self.url.host
            kwargs["port"] = self.url.port
        return kwargs

    def on_new_connection(self, connection) -> None:
        connection.set_session(isolation_level="READ COMMITTED", autocommit=False)

    def connection_lost(self, connection, exc: BaseException) -> bool:
        # psycopg2 marks a connection whose server vanished as closed (2) on first use;
        # an InterfaceError is an operation on a connection already closed
        return bool(getattr(connection, "closed", 0)) or isinstance(
            exc, self.module.InterfaceError)

    def convert_sql(self, sql: str) -> str:
        # no store writes a literal "?" or "%" in SQL text: every value is a parameter
        return sql.replace("%", "%%").replace("?", "%s")

    def describe(self) -> str:
        return "postgresql://%s@%s:%s/%s" % (self.url.user, self.url.host, self.url.port,
                                             self.url.dbname)


def create_engine(url: str, pool_size: int = 5, connect_timeout: float = 5.0) -> Engine:
    parsed = parse_database_url(url)
    if parsed.scheme == "sqlite":
        return Sqlite3Engine(parsed)
    return PostgresEngine(parsed, pool_size, connect_timeout)
