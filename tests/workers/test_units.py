"""The pieces of `[server] workers` that need no daemon: the setting and its refusals,
--workers, listen values as bound, one exposition of every worker's metrics."""

from __future__ import annotations

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gamed.core.config import ConfigError
from gamed.games import structure_config
from gamed.tap import Options, options_to_config
from gamed.workers.metrics import WorkerMetrics, merge_expositions
from gamed.workers.sockets import as_bound

PG = "postgresql://gamed@127.0.0.1:5432/gamed"


def config(workers, database=PG, redis="redis://127.0.0.1:6379/0"):
    return structure_config({"server": {"workers": workers}, "database": {"url": database},
                             "cluster": {"redis_url": redis}})


def test_one_worker_is_the_default_and_auto_is_the_cores():
    assert structure_config({}).server.worker_count() == 1
    assert config("auto").server.worker_count() == (os.cpu_count() or 1)
    assert config(3).server.worker_count() == 3


@pytest.mark.parametrize("value", [0, -2, "four", 2.5, True])
def test_a_bad_workers_value_is_refused(value):
    with pytest.raises(ConfigError, match="server.workers: must be a number"):
        config(value)


@pytest.mark.parametrize("database,redis", [("sqlite:///x.sqlite3", ""),
                                            (PG, "")])
def test_workers_without_postgresql_and_redis_are_refused_in_one_line(database, redis):
    with pytest.raises(ConfigError) as info:
        config(2, database, redis)
    assert str(info.value).startswith("server.workers: 2 workers act as one server")
    assert "\n" not in str(info.value)
    assert config(1, database, redis).server.workers == 1  # one process needs neither


def test_the_command_line_overrides_workers():
    options = Options()
    options.parseOptions(["--workers", "auto", "--database", PG])
    with pytest.raises(ConfigError, match="server.workers"):  # no redis_url
        options_to_config(options)
    options = Options()
    options.parseOptions(["--workers", "1"])
    assert options_to_config(options).server.workers == 1
    options = Options()
    options.parseOptions(["--workers", "many"])
    with pytest.raises(ConfigError, match="--workers"):
        options_to_config(options)


def test_a_listen_value_names_the_port_bound_for_port_0():
    assert as_bound("tcp:0:interface=127.0.0.1", 4321) == "tcp:4321:interface=127.0.0.1"
    assert as_bound("udp:0", 99) == "udp:99"
    assert as_bound("tcp:5556", 4321) == "tcp:5556"
    assert as_bound("systemd:domain=INET:index=0", 80) == "systemd:domain=INET:index=0"


def test_every_workers_series_in_one_exposition(tmp_path):
    ones = [WorkerMetrics(name, str(tmp_path)) for name in ("s-w0", "s-w1")]
    for n, metrics in enumerate(ones):
        metrics.service("uttt").connection_opened("lines")
        metrics.logins.labels("ok").inc(n + 1)
        metrics.write_snapshot()
    ones[0].logins.labels("ok").inc(10)  # the scraped worker's own series are current
    families = {f.name: f for f in text_string_to_metric_families(ones[0].render().decode())}
    logins = {s.labels["worker"]: s.value for s in families["gamed_logins"].samples
              if s.name == "gamed_logins_total"}
    assert logins == {"s-w0": 11.0, "s-w1": 2.0}
    open_now = {(s.labels["worker"], s.labels["service"]): s.value
                for s in families["gamed_connections"].samples}
    assert open_now == {("s-w0", "uttt"): 1.0, ("s-w1", "uttt"): 1.0}
    # HELP and TYPE once per family, however many workers
    text = merge_expositions({"a": "# TYPE x gauge\nx 1\n", "b": "# TYPE x gauge\nx 2\n"})
    assert text.decode().count("# TYPE x gauge") == 1


def test_a_worker_hears_which_other_worker_ended_line_by_line():
    from twisted.internet.testing import StringTransport

    from gamed.workers.worker import ToSupervisor

    link = ToSupervisor(reactor=None, stop=lambda: None)
    heard = []
    link.worker_ended = heard.append
    link.makeConnection(StringTransport())
    for chunk in (b"ENDED web-w", b"1\nENDED web-w2\nHELLO x\nENDED \n", b"ENDED web-w3"):
        link.dataReceived(chunk)
    assert heard == ["web-w1", "web-w2"]  # web-w3's line is not complete yet
    link.dataReceived(b"x" * (ToSupervisor.MAX_LINE + 1))  # an endless line is dropped
    link.dataReceived(b"\nENDED web-w4\n")
    assert heard == ["web-w1", "web-w2", "web-w4"]


def test_the_supervisor_tells_the_other_workers_when_one_dies(tmp_path):
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from gamed.workers.supervisor import ControlLine, Supervisor, Worker

    config = structure_config({})
    supervisor = Supervisor(Clock(), config, {}, 3, environ={})
    lines = {}
    for worker in supervisor.workers:
        worker.process = object()
        control = ControlLine(worker)
        control.makeConnection(StringTransport())
        lines[worker.name] = control.transport
    dead = supervisor.workers[1]
    supervisor.worker_ended(dead, None)
    told = {name: transport.value() for name, transport in lines.items()}
    assert told[dead.name] == b""
    assert set(told.values()) == {b"", ("ENDED %s\n" % dead.name).encode()}
    assert sum(1 for value in told.values() if value) == 2
