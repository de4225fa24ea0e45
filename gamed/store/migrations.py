"""Numbered schema files (gamed/store/schema/NNN_name.sql), applied in order and recorded.

The database records every applied version in `schema_version`; a database that holds a
version this code does not know is refused (an older binary must not run on a newer schema).
"""

from __future__ import annotations

import datetime
import importlib.resources
import re

import attrs

from gamed.store.database import Cursor

SCHEMA_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class SchemaError(Exception):
    """The database's schema cannot be used by this code."""


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str


def known_migrations() -> list[Migration]:
    found = []
    for entry in importlib.resources.files("gamed.store").joinpath("schema").iterdir():
        match = SCHEMA_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SchemaError("two schema files share a version number: %s" % versions)
    return found


def statements(sql: str) -> list[str]:
    """Split a schema file on ';' at the end of a line; '--' comments are dropped."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().rstrip(";")]


def applied_versions(cur: Cursor, create: bool = True) -> list[int]:
    """Versions applied so far; with create False a database without the table is just
    at version 0 (a check changes nothing)."""
    if create:
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    elif not _has_schema_table(cur):
        return []
    return [row[0] for row in cur.execute("SELECT version FROM schema_version "
                                          "ORDER BY version").fetchall()]


def _has_schema_table(cur: Cursor) -> bool:
    if cur.engine.name == "postgresql":
        sql = ("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'"
               " AND table_schema = current_schema()")
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    return cur.execute(sql).fetchone() is not None


def pending(cur: Cursor, create: bool = True) -> list[Migration]:
    """Migrations not yet applied; SchemaError if the database is newer than the code."""
    known = known_migrations()
    applied = applied_versions(cur, create)
    newest = known[-1].version if known else 0
    unknown = [v for v in applied if v > newest]
    if unknown:
        raise SchemaError("the database schema is at version %d but this gamed knows only up "
                          "to %d: upgrade gamed" % (max(unknown), newest))
    return [m for m in known if m.version not in applied]


MIGRATION_LOCK = 0x67616D6564  # "gamed": the PostgreSQL advisory lock migrators share


def migrate(cur: Cursor) -> list[Migration]:
    """Apply every pending migration in this transaction; returns what was applied. On
    PostgreSQL two migrators (a daemon and gamectl, two daemons) take turns: the second
    waits for the first's commit, then finds nothing left to do. SQLite's single writer
    serialises them already."""
    if cur.engine.name == "postgresql":
        cur.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    todo = pending(cur)
    for migration in todo:
        for statement in statements(cur.engine.expand_schema(migration.sql)):
            cur.execute(statement)
        cur.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name,
                     datetime.datetime.now(datetime.timezone.utc).isoformat()))
    return todo


def current_version(cur: Cursor, create: bool = True) -> int:
    applied = applied_versions(cur, create)
    return applied[-1] if applied else 0
