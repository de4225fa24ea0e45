"""Fixtures for the cluster tests: the machine's Redis under a key prefix of this run
(every key removed afterwards), and nodes built in process on the real reactor."""

from __future__ import annotations

import secrets

import pytest
import pytest_twisted

from gamed.cluster.redis import RedisCluster
from gamed.cluster.settings import ClusterSettings, parse_redis_url
from tests.cluster.redisutil import REDIS_URL, BlockingRedis


@pytest.fixture
def redis_prefix():
    url = parse_redis_url(REDIS_URL)
    try:
        client = BlockingRedis(url.host, url.port, url.db)
    except OSError as exc:
        pytest.fail("Redis is not reachable at %s (%s); start it (redis-server "
                    "--daemonize yes) or set GAMED_TEST_REDIS_URL" % (REDIS_URL, exc))
    prefix = "gamedtest:%s:" % secrets.token_hex(4)
    yield prefix
    client.delete_prefix(prefix)
    client.close()


@pytest.fixture
def make_node(redis_prefix):
    """make_node(name, url=REDIS_URL, **settings) -> a started RedisCluster (stopped after)."""
    from twisted.internet import reactor

    started = []

    def make(name, url=REDIS_URL, **overrides):
        settings = ClusterSettings(redis_url=url, key_prefix=redis_prefix,
                                   **{"heartbeat": 0.2, "timeout": 1.0, **overrides})
        node = RedisCluster(reactor, settings, name, parse_redis_url(url), games=("uttt",))
        node.startService()
        started.append(node)
        return node

    yield make
    for node in started:
        if node.running:
            pytest_twisted.blockon(node.stopService())


@pytest.fixture(scope="module")
def cluster_database():
    """A PostgreSQL database of this module's own (the nodes share it), dropped after."""
    import os

    from tests.conftest import POSTGRES_SERVER, _admin_connection

    if os.environ.get("GAMED_TEST_POSTGRES") == "0":
        pytest.skip("a cluster needs PostgreSQL (GAMED_TEST_POSTGRES=0)")
    name = "gamed_cluster_%s" % secrets.token_hex(4)
    admin = _admin_connection()
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE " + name)
    yield POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute("DROP DATABASE IF EXISTS " + name)
    admin.close()


@pytest.fixture
def start_node(tmp_path, cluster_database, redis_prefix):
    """start_node(name, redis_url=REDIS_URL, extra="") -> a running `twistd gamed` node of
    this test's cluster (SIGKILLed after the test if still running)."""
    from tests.integration.harness import Daemon

    nodes = []

    def start(name, redis_url=REDIS_URL, extra=""):
        home = tmp_path / name
        home.mkdir()
        config = ('[cluster]\nredis_url = "%s"\nnode_name = "%s"\nkey_prefix = "%s"\n'
                  'heartbeat = 0.2\ntimeout = 1.5\n%s' % (redis_url, name, redis_prefix, extra))
        daemon = Daemon(home, config, database_url=cluster_database)
        nodes.append(daemon)
        return daemon.start()

    yield start
    for daemon in nodes:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
