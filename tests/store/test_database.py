"""Database: a lost or slow database is DatabaseUnavailable, and service resumes by itself."""

import threading

import pytest
import pytest_twisted

from gamed.store.database import DatabaseUnavailable


@pytest_twisted.ensureDeferred
async def test_a_read_past_query_timeout_is_unavailable_then_the_next_one_answers(database):
    database.query_timeout = 0.2
    release = threading.Event()

    def stuck(cur):
        release.wait(10)  # a database that does not answer
        return cur.scalar("SELECT 1")

    with pytest.raises(DatabaseUnavailable, match="did not answer within 0.2 s"):
        await database.run_read("stuck", stuck)
    assert database.unavailable is not None
    release.set()
    assert await database.run_read("quick", lambda cur: cur.scalar("SELECT 2")) == 2
    assert database.unavailable is None


@pytest_twisted.ensureDeferred
async def test_a_read_abandoned_while_queued_is_never_run(database):
    database.query_timeout = 0.2
    release = threading.Event()
    ran = []
    blockers = [database.run_interaction("block", lambda cur: release.wait(10))
                for _ in range(database.engine.max_connections)]
    with pytest.raises(DatabaseUnavailable):
        await database.run_read("queued", lambda cur: ran.append(1))
    release.set()
    for blocker in blockers:
        await blocker
    assert await database.run_read("after", lambda cur: cur.scalar("SELECT 3")) == 3
    assert ran == []


@pytest_twisted.ensureDeferred
async def test_a_write_is_waited_for_however_long_it_takes(database):
    database.query_timeout = 0.05
    release = threading.Event()

    def slow(cur):
        release.wait(0.3)
        return cur.scalar("SELECT 4")

    assert await database.run_interaction("slow_write", slow) == 4


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_is_unavailable_with_the_drivers_reason(database):
    def refuse():
        raise database.engine.module.OperationalError("unable to open database file")

    database.pool.connect = refuse
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        await database.run_interaction("write", lambda cur: None)
    assert "unable to open" in database.unavailable
