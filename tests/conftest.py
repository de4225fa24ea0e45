"""Shared fixtures: a migrated database on SQLite and PostgreSQL, and a real Core.

`database` is parametrized over both engines: every test that takes it (directly or
through `core`) runs once on a fresh SQLite file and once on a PostgreSQL database that
this test run creates and drops. Set GAMED_TEST_POSTGRES=0 to skip PostgreSQL, or
GAMED_TEST_POSTGRES_URL to point at another server (default: the machine's
postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import os
import random
import secrets

import pytest
import pytest_twisted
from hypothesis import settings as hypothesis_settings

from gamed.core.metrics import Metrics
from gamed.core.runtime import build_core
from gamed.core.testing import make_test_config
from gamed.store.database import Database, run_blocking
from gamed.store.engines import create_engine
from gamed.store.migrations import migrate

# no per-example deadline: this machine's speed swings 2x within minutes, and a test must
# not fail for the time an example took (speed lives in bench/)
hypothesis_settings.register_profile("gamed", deadline=None)
hypothesis_settings.load_profile("gamed")

POSTGRES_SERVER = os.environ.get("GAMED_TEST_POSTGRES_URL",
                                 "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = ["sqlite"] + ([] if os.environ.get("GAMED_TEST_POSTGRES") == "0" else ["postgresql"])


def _admin_connection():
    import psycopg2

    engine = create_engine(POSTGRES_SERVER)
    connection = psycopg2.connect(**engine.connect_kwargs())
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def postgres_database():
    """One PostgreSQL database for the whole run; created here, dropped at the end."""
    name = "gamed_test_%s" % secrets.token_hex(4)
    try:
        admin = _admin_connection()
    except Exception as exc:  # noqa: BLE001
        pytest.fail("PostgreSQL is not reachable at %s (%s); start it or set "
                    "GAMED_TEST_POSTGRES=0" % (POSTGRES_SERVER, exc))
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + name)
    base = POSTGRES_SERVER.rsplit("/", 1)[0]
    yield base + "/" + name
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute("DROP DATABASE IF EXISTS " + name)
    admin.close()


def _reset_postgres(url: str) -> None:
    """Drop every table so each test starts from an empty, freshly migrated schema."""
    engine = create_engine(url)

    def drop(cur):
        cur.execute("DROP SCHEMA public CASCADE")
        cur.execute("CREATE SCHEMA public")

    run_blocking(engine, drop)


@pytest.fixture
def database_url(request, tmp_path):
    kind = request.param if hasattr(request, "param") else "sqlite"
    if kind == "sqlite":
        return "sqlite:///" + str(tmp_path / "gamed.sqlite3")
    url = request.getfixturevalue("postgres_database")
    _reset_postgres(url)
    return url


def pytest_generate_tests(metafunc):
    if "database_url" in metafunc.fixturenames and not hasattr(metafunc.function, "sqlite_only"):
        marker = metafunc.definition.get_closest_marker("sqlite_only")
        engines = ["sqlite"] if marker else ENGINES
        metafunc.parametrize("database_url", engines, indirect=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: run a database test on SQLite only")


@pytest.fixture
def metrics():
    return Metrics()


@pytest.fixture
def database(database_url, metrics):
    """A migrated Database on the real reactor, closed after the test."""
    from twisted.internet import reactor

    run_blocking(create_engine(database_url), migrate)
    db = Database(database_url, pool_size=3, metrics=metrics, reactor=reactor)
    db.start()
    yield db
    db.close()


@pytest.fixture
def core(database, metrics):
    """A real Core (real reactor, bcrypt cost 4) on the parametrized database."""
    from twisted.internet import reactor

    built = build_core(reactor, make_test_config(), database, metrics, random.Random(1234))
    built.accounts.startService()
    yield built
    pytest_twisted.blockon(built.accounts.stopService() or _done())


def _done():
    from twisted.internet import defer

    return defer.succeed(None)
