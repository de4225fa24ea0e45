"""Migrations on a fresh database: two migrators at once, and URLs shown without secrets."""

import threading

from gamed.store.engines import create_engine, parse_database_url, redacted
from gamed.store.database import run_blocking
from gamed.store.migrations import current_version, known_migrations, migrate


def test_two_migrators_at_once_take_turns(database_url):
    engine = create_engine(database_url)
    results, errors = [], []

    def migrator():
        try:
            results.append(run_blocking(create_engine(database_url), migrate))
        except Exception as exc:  # noqa: BLE001 (the test reports any failure)
            errors.append(exc)

    threads = [threading.Thread(target=migrator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    # one applied everything, the other found nothing left to do
    assert sorted(len(applied) for applied in results) == [0, len(known_migrations())]
    assert run_blocking(engine, current_version) == known_migrations()[-1].version


def test_a_database_url_is_shown_without_its_password():
    assert redacted("postgresql://gamed:hunter2@db:5432/gamed") == (
        "postgresql://gamed:***@db:5432/gamed")
    assert redacted("sqlite:///var/gamed.sqlite3") == "sqlite:///var/gamed.sqlite3"
    for bad in ("postgresql://gamed:hunter2@db:port/gamed", "postgresql://gamed:hunter2@db/",
                "mysql://gamed:hunter2@db/gamed", "postgresql://gamed:hun/ter2@db:x/gamed",
                "postgresql://gamed:hun#ter2@db/"):
        try:
            parse_database_url(bad)
        except ValueError as exc:
            assert "hunter2" not in str(exc) and "ter2" not in str(exc), exc
        else:
            raise AssertionError("accepted %r" % bad)


def test_looking_at_a_fresh_database_changes_nothing(database_url):
    from gamed.store.migrations import _has_schema_table, pending

    engine = create_engine(database_url)
    assert len(run_blocking(engine, pending, False)) == len(known_migrations())
    assert run_blocking(engine, current_version, False) == 0
    assert not run_blocking(engine, _has_schema_table)
