"""The real `twistd gamed` process: plugin discovery, start-up errors, a clean start and stop."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def twistd(*args, cwd, timeout=60):
    return subprocess.run([TWISTD, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_twistd_lists_the_plugin_and_documents_every_option(tmp_path):
    listed = twistd("--help", cwd=tmp_path)
    assert re.search(r"^\s+gamed\s", listed.stdout, re.M), listed.stdout
    usage = twistd("gamed", "--help", cwd=tmp_path).stdout
    for option in ("--config", "--database", "--novaglide-listen", "--blockattack-listen",
                   "--uttt-websocket", "--uttt-listen", "--rooms-websocket", "--rooms-listen",
                   "--http-listen", "--bcrypt-cost", "--log-format"):
        assert option in usage, option


@pytest.mark.parametrize("config, message", [
    ("[http]\nlisten = 5\n", "http.listen"),
    ("[rooms]\nsurprise = 1\n", "unknown key surprise"),
    ("[uttt]\nwebsocket = \"nonsense:1\"\n", "uttt.websocket"),
    ("[database]\nurl = \"postgresql://nobody@127.0.0.1:1/none\"\n", "database.url: cannot reach"),
    ("[http]\nlisten = \"tcp:99999\"\n", "port out of range"),
])
def test_invalid_config_stops_start_up_with_one_message(tmp_path, config, message):
    path = tmp_path / "gamed.toml"
    path.write_text(config)
    result = twistd("-n", "--pidfile=", "gamed", "--config", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_newer_schema_is_refused(tmp_path):
    import sqlite3

    db = tmp_path / "g.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT,"
                     " applied_at TEXT)")
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    result = twistd("-n", "--pidfile=", "gamed", "--database", "sqlite:///%s" % db,
                    "--http-listen", "", cwd=tmp_path)
    assert result.returncode != 0 and "upgrade gamed" in result.stderr, result.stderr


def test_starts_on_defaults_migrates_and_stops_cleanly_on_sigterm(tmp_path):
    """Only HTTP on an OS-chosen port (read from the log); every game disabled."""
    config = tmp_path / "gamed.toml"
    config.write_text(
        '[accounts]\nbcrypt_cost = 4\n[http]\nlisten = "tcp:0:interface=127.0.0.1"\n'
        '[novaglide]\nlisten = ""\n[blockattack]\nlisten = ""\n'
        '[uttt]\nwebsocket = ""\nlisten = ""\n[rooms]\nwebsocket = ""\nlisten = ""\n')
    log = tmp_path / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gamed", "--config", str(config)],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            match = re.search(r"Site starting on (\d+)", log.read_text())
            port = int(match.group(1)) if match else None
            time.sleep(0.1)
        assert port, log.read_text()
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as reply:
            assert reply.status == 200
        assert (tmp_path / "var" / "gamed.sqlite3").exists()
        assert "applied schema migration 001 core" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    # twistd re-raises the signal that stopped it after a clean shutdown (systemd counts
    # SIGTERM as success)
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert "Server Shut Down" in log.read_text()


def test_a_port_in_use_stops_start_up_with_one_line(tmp_path):
    import socket

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    try:
        result = twistd("-n", "--pidfile=", "gamed", "--database",
                        "sqlite:///%s" % (tmp_path / "g.sqlite3"), "--http-listen",
                        "tcp:%d:interface=127.0.0.1" % port, "--novaglide-listen", "",
                        "--blockattack-listen", "", "--uttt-websocket", "", "--uttt-listen",
                        "", "--rooms-websocket", "", "--rooms-listen", "", cwd=tmp_path)
    finally:
        held.close()
    output = result.stdout + result.stderr  # twistd's log already holds stderr by then
    assert result.returncode != 0
    assert "cannot listen on 127.0.0.1:%d" % port in output, output
    assert "Traceback" not in output, output


def test_a_systemd_socket_that_was_not_handed_over_stops_start_up_with_one_line(tmp_path):
    result = twistd("-n", "--pidfile=", "gamed", "--database",
                    "sqlite:///%s" % (tmp_path / "g.sqlite3"), "--http-listen",
                    "systemd:domain=INET:index=3", "--novaglide-listen", "",
                    "--blockattack-listen", "", "--uttt-websocket", "", "--uttt-listen",
                    "", "--rooms-websocket", "", "--rooms-listen", "", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "gamed: cannot listen" in output, output
    assert "Traceback" not in output, output
