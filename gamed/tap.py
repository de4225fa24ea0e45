"""`twistd gamed`: command-line options and the service tree built from the config.

Start-up order: load and validate the config (command-line options override it), reach
the database and apply migrations, then build the services. Any failure before the
reactor runs exits with one message naming the problem and status 1; nothing listens.
"""

from __future__ import annotations

import importlib
import sys

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from gamed.core.config import ConfigError, parse_workers, set_option
from gamed.core.endpoints import ListenError
from gamed.games import GAMES, LISTENER_KEYS, GamedConfig, load_config
from gamed.core.lag import ReactorLagMonitor
from gamed.core.metrics import Metrics
from gamed.core.runtime import Core, build_core
from gamed.core.services import SequentialMultiService
from gamed.core.systemd import NotifyService, raise_open_files_limit
from gamed.store.database import Database, blocking_connect, run_blocking
from gamed.store.engines import create_engine
from gamed.store.migrations import SchemaError, migrate

log = Logger(namespace="gamed")


class Options(usage.Options):
    synopsis = "[--config FILE] [options]"
    longdesc = ("Run the gamed game servers (novaglide, blockattack, uttt, rooms) and the "
                "HTTP service. Without --config the built-in defaults run every service on an "
                "embedded SQLite database in ./var (or $STATE_DIRECTORY). Listen values are "
                "Twisted endpoint descriptions (tcp:PORT:interface=ADDR, ssl:..., "
                "systemd:domain=INET:index=N); UDP is udp:PORT[:interface=ADDR]; an empty "
                "value disables that listener.")
    optParameters = [
        ["config", "c", None, "TOML config file (see etc/gamed.toml for every key)"],
        ["database", "d", None, "database URL, overrides [database] url: sqlite:///PATH or "
                                "postgresql://USER@HOST:PORT/DB"],
        ["bcrypt-cost", None, None, "bcrypt work factor, overrides [accounts] bcrypt_cost",
         int],
        ["log-format", None, None, "text or json, overrides [logging] format"],
        ["workers", None, None, "processes behind the same ports, overrides [server] "
                                "workers: 1 (one process), N, or auto (one per core)"],
    ] + [
        ["%s-%s" % (section, key), None, None,
         "endpoint, overrides [%s] %s" % (section, key)]
        for section, key in LISTENER_KEYS
    ]


def options_to_config(options) -> GamedConfig:
    config = load_config(options["config"])
    if options["database"] is not None:
        config = set_option(config, "database", "url", options["database"])
    if options["bcrypt-cost"] is not None:
        config = set_option(config, "accounts", "bcrypt_cost", options["bcrypt-cost"])
    if options["log-format"] is not None:
        config = set_option(config, "logging", "format", options["log-format"])
    if options.get("workers") is not None:
        try:
            workers = parse_workers(options["workers"])
        except ValueError:
            raise ConfigError("--workers: must be a number or auto") from None
        config = set_option(config, "server", "workers", workers)
    for section, key in LISTENER_KEYS:
        value = options["%s-%s" % (section, key)]
        if value is not None:
            config = set_option(config, section, key, value)
    from gamed.core.config import validate

    validate(config)
    return config


def prepare_database(config: GamedConfig) -> None:
    """Reach the database and apply pending migrations, blocking (before the reactor)."""
    url = config.database.resolved_url()
    engine = create_engine(url, config.database.pool_size, config.database.connect_timeout)
    try:
        connection = blocking_connect(engine)
    except Exception as exc:
        raise ConfigError("database.url: cannot reach %s: %s"
                          % (engine.describe(), str(exc).strip().splitlines()[0] if str(exc)
                             else type(exc).__name__)) from None
    try:
        applied = run_blocking(engine, migrate, connection=connection)
    except SchemaError as exc:
        raise ConfigError("database: %s" % exc) from None
    finally:
        connection.close()
    for migration in applied:
        log.info("applied schema migration {version:03d} {name}", version=migration.version,
                 name=migration.name)


class DatabaseService(service.Service):
    """Owns the pool: closed last, after every game has recorded its results."""

    name = "database"

    def __init__(self, database: Database):
        self.database = database

    def startService(self):
        service.Service.startService(self)
        self.database.start()

    def stopService(self):
        service.Service.stopService(self)
        self.database.close()


def give_log_observer(parent, config) -> None:
    """twistd wraps the root service in an Application: give it our log observer, which
    twistd's AppLogger then uses instead of its default (so the config chooses the
    format)."""
    from twisted.logger import ILogObserver
    from twisted.python.components import Componentized

    from gamed.core.logs import make_observer

    if isinstance(parent, Componentized):
        settings = config.logging
        parent.setComponent(ILogObserver, make_observer(settings.format, settings.level))


def listen_or_exit(start) -> None:
    """start() (binding the listeners); a port that cannot be bound is one line and exit 1."""
    from twisted.internet.error import CannotListenError

    try:
        start()
    except CannotListenError as exc:
        sys.stderr.write("gamed: cannot listen on %s:%s: %s\n"
                         % (exc.interface or "*", exc.port, exc.socketError))
        raise SystemExit(1)
    except ListenError as exc:
        sys.stderr.write("gamed: cannot listen: %s\n" % exc)
        raise SystemExit(1)
    except (OSError, OverflowError) as exc:
        sys.stderr.write("gamed: cannot listen: %s: %s\n" % (type(exc).__name__, exc))
        raise SystemExit(1)


class GamedService(SequentialMultiService):
    """The root service: children stop in reverse order (sd_notify STOPPING=1, HTTP, the
    games -- side by side -- draining their players and recording results, accounts, the
    database last),
    within the configured grace period plus a margin."""

    def __init__(self, core: Core):
        super().__init__()
        self.core = core

    def setServiceParent(self, parent):
        give_log_observer(parent, self.core.config)
        return super().setServiceParent(parent)

    def privilegedStartService(self):
        listen_or_exit(super().privilegedStartService)

    def stopService(self):
        log.info("shutting down: draining players (grace {grace} s)",
                 grace=self.core.config.shutdown.grace_period)
        d = super().stopService()
        d.addTimeout(self.core.config.shutdown.grace_period + 10, self.core.reactor)
        d.addErrback(lambda f: log.failure("shutdown did not complete cleanly", f))
        return d


def build_services(core: Core, notify=None) -> service.MultiService:
    """The whole tree: database, accounts, the games, HTTP (stopped in reverse order)."""
    top = GamedService(core)
    DatabaseService(core.database).setServiceParent(top)
    core.accounts.setServiceParent(top)
    # joins the cluster before the games start and leaves it after they have drained
    core.cluster.setServiceParent(top)
    # the games drain side by side (a plain MultiService stops its children at once), so
    # one game waiting for its players' last acks does not hold the others' goodbyes back
    games = service.MultiService()
    games.setName("games")
    games.setServiceParent(top)
    for game in GAMES:
        try:
            module = importlib.import_module("gamed.%s.service" % game)
        except ModuleNotFoundError as exc:
            if exc.name != "gamed.%s.service" % game:
                raise
            log.warn("{game}: not available in this build", game=game)
            continue
        # each game is handed its own section of the config
        child = module.make_service(core, settings=getattr(core.config, game))
        if child is not None:
            child.setServiceParent(games)
    from gamed.web.service import make_service as make_web

    web = make_web(core)
    if web is not None:
        web.setServiceParent(top)
    ReactorLagMonitor(core.reactor, core.metrics).setServiceParent(top)
    NotifyService(core.reactor, notify=notify).setServiceParent(top)
    return top


def make_cluster(reactor, config: GamedConfig):
    """One node alone (no Redis) or a node of a cluster, from [cluster]."""
    from gamed.cluster.local import LocalCluster
    from gamed.cluster.settings import default_node_name, parse_redis_url

    settings = config.cluster
    node = settings.node_name or default_node_name(config.http.listen)
    if not settings.redis_url:
        return LocalCluster(node)
    from gamed.cluster.redis import RedisCluster

    return RedisCluster(reactor, settings, node, parse_redis_url(settings.redis_url),
                        games=GAMES)


def make_core(reactor, config: GamedConfig, metrics=None) -> Core:
    """The Core of one serving process (a lone gamed, or one worker)."""
    before, after = raise_open_files_limit()
    if after != before:
        log.info("raised the open-files limit from {before} to {after}", before=before,
                 after=after)
    metrics = metrics or Metrics()
    database = Database(config.database.resolved_url(), config.database.pool_size,
                        config.database.connect_timeout, metrics=metrics,
                        query_timeout=config.database.query_timeout)
    return build_core(reactor, config, database, metrics, cluster=make_cluster(reactor, config))


class SupervisorRoot(service.MultiService):
    """The root service with workers: the supervisor (gamed/workers/supervisor.py)."""

    def __init__(self, config, supervisor):
        super().__init__()
        self.config = config
        supervisor.setServiceParent(self)

    def setServiceParent(self, parent):
        give_log_observer(parent, self.config)
        return super().setServiceParent(parent)

    def privilegedStartService(self):
        listen_or_exit(super().privilegedStartService)


def worker_options(options) -> dict:
    """What a worker needs of the command line to load the same config."""
    return {key: options[key] for key in
            ["config", "database", "bcrypt-cost", "log-format"]
            + ["%s-%s" % pair for pair in LISTENER_KEYS]}


def makeService(options) -> service.IService:
    from twisted.internet import reactor

    try:
        config = options_to_config(options)
        prepare_database(config)
    except ConfigError as exc:
        sys.stderr.write("gamed: %s\n" % exc)
        raise SystemExit(1)
    count = config.server.worker_count()
    if count > 1:
        from gamed.workers.supervisor import Supervisor

        options = dict(worker_options(options), workers="1")
        return SupervisorRoot(config, Supervisor(reactor, config, options, count))
    core = make_core(reactor, config)
    try:
        return build_services(core)
    except ListenError as exc:
        sys.stderr.write("gamed: cannot listen: %s\n" % exc)
        raise SystemExit(1)
