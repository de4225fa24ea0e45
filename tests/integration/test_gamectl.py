"""gamectl against SQLite and PostgreSQL: migrate, check, users, sessions, listings."""

import json
import os
import subprocess
import sys

import pytest

GAMECTL = os.path.join(os.path.dirname(sys.executable), "gamectl")


@pytest.fixture
def ctl(database_url):
    def run(*args, stdin=None):
        return subprocess.run([GAMECTL, "--database", database_url, *args], input=stdin,
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
    return run


def test_gamectl_full_cycle(ctl):
    check = ctl("check")
    if "schema current" not in check.stdout:
        assert check.returncode == 1
        # PostgreSQL: the database exists, its schema does not; SQLite: no file yet, and
        # only migrate makes one (another working directory must not mean a new database)
        assert ("pending migrations" in check.stdout or "no database at" in check.stderr), (
            check.stdout, check.stderr)
    assert ctl("migrate").returncode == 0
    check = ctl("check")
    assert check.returncode == 0 and "schema current" in check.stdout
    created = ctl("user", "create", "Opal", "--password-stdin", stdin="s3cret\n")
    assert created.returncode == 0 and "created account" in created.stdout
    taken = ctl("user", "create", "opal", "--password-stdin", stdin="x\n")
    assert taken.returncode == 1 and "taken" in taken.stderr
    assert ctl("user", "ban", "opal").returncode == 0
    assert ctl("sessions", "revoke", "OPAL").returncode == 0
    assert ctl("user", "unban", "opal").returncode == 0
    assert ctl("user", "passwd", "opal", "--password-stdin", stdin="n3w\n").returncode == 0
    board = ctl("leaderboard", "uttt", "--json")
    assert board.returncode == 0 and json.loads(board.stdout) == []
    listed = ctl("matches", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert ctl("matches", "--csv").stdout.startswith("id,game,ended_at")
    missing = ctl("matches", "--player", "ghost")
    assert missing.returncode == 1 and "no account named" in missing.stderr
    assert ctl("user", "delete", "opal").returncode == 0
    assert ctl("user", "ban", "opal").returncode == 1


def test_gamectl_errors_are_clear():
    bad = subprocess.run([GAMECTL, "--database", "postgresql://nobody@127.0.0.1:1/x", "check"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "cannot reach" in bad.stderr
    usage = subprocess.run([GAMECTL, "frobnicate"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
