"""Two real `twistd gamed` nodes on the machine's PostgreSQL and Redis: they share
presence, report Redis going away on /healthz and rejoin; SQLite is refused."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

from tests.cluster.redisutil import PrivateRedis
from tests.integration.harness import TWISTD, Lines


def get(daemon, path):
    """(status, decoded JSON) of GET path on the node's HTTP listener."""
    url = "http://127.0.0.1:%d%s" % (daemon.ports["http"], path)
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def uttt_guest(daemon, name):
    client = Lines(daemon.ports["uttt_tcp"])
    client.send({"type": "temp_session", "data": {"name": name}})
    reply = client.wait_for(lambda m: m.get("type") == "login_response")
    assert reply["data"]["success"], reply
    return client


def test_presence_spans_nodes_and_a_killed_node_is_forgotten(start_node):
    a, b = start_node("a"), start_node("b")
    assert get(a, "/healthz") == (200, {"status": "ok", "database": "postgresql", "node": "a"})
    ann = uttt_guest(a, "ann_cl")
    player = lambda: get(b, "/api/players/ann_cl")[1]  # noqa: E731
    wait_for(lambda: player()["online"], "b sees ann online")
    assert player()["playing"] == ["uttt"]
    ann.close()
    wait_for(lambda: not player()["online"], "b sees ann leave")
    ann = uttt_guest(a, "ann_cl")
    wait_for(lambda: player()["online"], "b sees ann again")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    # no goodbye from a: b forgets its players once a's heartbeat times out
    wait_for(lambda: not player()["online"], "b forgets the dead node's player")
    assert get(b, "/healthz")[0] == 200


def test_health_reports_redis_away_and_the_node_rejoins(start_node, tmp_path):
    redis = PrivateRedis(tmp_path).start()
    try:
        a = start_node("a", redis.url)
        wait_for(lambda: get(a, "/healthz")[0] == 200, "a joined")
        redis.stop()
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
            get(a, "/healthz")), "503 while Redis is away")
        assert body["error"] == "unavailable" and "cluster: redis" in body["message"], body
        # its own players keep being served meanwhile
        ann = uttt_guest(a, "bob_cl")
        ann.close()
        redis.start()
        wait_for(lambda: get(a, "/healthz")[0] == 200, "a rejoined")
    finally:
        redis.stop()


def test_sqlite_is_refused_in_a_cluster_with_one_line(tmp_path):
    import subprocess

    config = tmp_path / "gamed.toml"
    config.write_text('[database]\nurl = "sqlite:///%s"\n[cluster]\n'
                      'redis_url = "redis://127.0.0.1:6379/0"\n' % (tmp_path / "g.sqlite3"))
    result = subprocess.run([TWISTD, "-n", "--pidfile=", "gamed", "--config", str(config)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "gamed: cluster.redis_url: a cluster needs a postgresql:// database (the nodes "
        "share it); SQLite serves one node alone"], result.stderr


def novaglide_login(daemon, name):
    client = Lines(daemon.ports["novaglide"])
    client.send({"time": "2026-12-02T10:00:00", "sender": "unknown", "flag": "log_in_data",
                 "data": [name, "pw-" + name]})
    reply = client.wait_for(lambda m: m.get("flag") == "change_of_status")
    assert reply["data"][0] == "online", reply
    return client


def test_a_second_login_on_another_node_takes_the_session_over(start_node):
    a, b = start_node("a"), start_node("b")
    first = novaglide_login(a, "cara_cl")
    wait_for(lambda: get(b, "/api/players/cara_cl")[1]["online"], "b sees cara")
    second = novaglide_login(b, "cara_cl")
    told = first.wait_for(lambda m: m.get("flag") == "change_of_status")
    assert told["data"][:2] == ["offline", "logged in from another connection"]
    try:
        first.recv()
        raise AssertionError("the first connection stays open")
    except (EOFError, ConnectionError):
        pass
    # still online (on b) as a's own session ended
    wait_for(lambda: get(a, "/api/players/cara_cl")[1]["playing"] == ["novaglide"], "on b")
    second.close()
