"""The config file: TOML loaded into attrs classes with cattrs, validated before start-up.

Every section and key has a documented default (see etc/gamed.toml); an unknown key, a
wrong type or a bad value raises `ConfigError` naming the key, and nothing starts.

The core knows only its own sections; the games' sections come from the game registry
(`gamed.games`), which builds the daemon's config class with `config_class`. A section
class says which of its keys are listeners (`LISTENERS`: key -> "tcp" or "udp") and
which numbers must be above zero (`POSITIVE`); stream sections (`StreamLimits`) get the
transport limits checked.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, ClassVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from gamed.cluster.settings import ClusterSettings
from gamed.core.settings import StreamLimits


class ConfigError(Exception):
    """The config cannot be used; the message names the offending key."""


def default_state_dir() -> str:
    """Where the embedded SQLite database lives without a config file.

    systemd's StateDirectory= sets $STATE_DIRECTORY; otherwise ./var under the working
    directory, so a checkout runs without root.
    """
    return os.environ.get("STATE_DIRECTORY") or os.path.join(os.getcwd(), "var")


@attrs.define
class ServerSettings:
    #: processes serving the games behind the same ports: 1 = one process, as always;
    #: N > 1 or "auto" (one per core) = a supervisor and N workers acting as one server
    #: through [cluster] (needs a postgresql:// database and cluster.redis_url)
    workers: Any = 1

    def worker_count(self) -> int:
        """How many workers `workers` means on this machine."""
        if self.workers == "auto":
            return os.cpu_count() or 1
        return self.workers


def parse_workers(value: str) -> Any:
    """--workers N|auto -> the [server] workers value (checked by validate)."""
    return value if value == "auto" else int(value)


@attrs.define
class DatabaseSettings:
    #: sqlite:///PATH (embedded) or postgresql://USER@HOST:PORT/DB
    url: str = ""
    #: connections in the PostgreSQL pool (SQLite always uses one)
    pool_size: int = 5
    #: seconds a start-up connection attempt may take before giving up
    connect_timeout: float = 5.0
    #: seconds a lookup a player waits for (login, session, ratings, history) may take
    #: before it is answered `unavailable`; writes (moves, results) are always waited for
    query_timeout: float = 5.0

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        return "sqlite:///" + os.path.join(default_state_dir(), "gamed.sqlite3")


@attrs.define
class AccountSettings:
    #: bcrypt work factor (4..31); 12 in production, 4 in tests
    bcrypt_cost: int = 12
    #: threads hashing passwords (bounded: never the reactor thread)
    bcrypt_threads: int = 2
    #: password checks waiting for a thread before new logins are refused as busy
    bcrypt_queue_limit: int = 256
    #: session token lifetime in seconds
    session_ttl: float = 30 * 24 * 3600.0
    #: login attempts: leaky bucket per client address (capacity, leak per second)
    address_burst: int = 20
    address_rate: float = 2.0
    #: login attempts: leaky bucket per account name
    account_burst: int = 10
    account_rate: float = 0.5
    #: longest password accepted by any service, in UTF-8 bytes (past 72, bcrypt is given
    #: the password's SHA-256 so that every byte counts)
    max_password_length: int = 256


@attrs.define
class HttpSettings:
    LISTENERS: ClassVar[dict] = {"listen": "tcp"}
    #: HTTP listener: the web pages, /healthz, /metrics, /api/...
    listen: str = "tcp:8080"
    #: the WebSocket URL the /play/uttt page connects to; empty: ws:// (wss:// on an
    #: https page) on the page's own host at the port of [uttt] websocket (give the URL
    #: when that is not a tcp: or ssl: port, or when a proxy serves it elsewhere)
    play_websocket_url: str = ""
    #: the /admin console's password as a bcrypt hash (`gamectl admin-password` makes
    #: one); empty: no console, /admin is a 404
    admin_password_hash: str = ""
    #: seconds a console login lasts (its cookie and its server-side session)
    admin_session_ttl: float = 3600.0
    #: /debug/objects: live Python objects per type (bench/soak.py's leak finder; the
    #: count holds the reactor for tens of ms: leave it off in production)
    debug_objects: bool = False
    #: public pages built at once (their database reads and rendering); more wait below
    page_concurrency: int = 4
    #: public pages that may wait for their turn; one more is answered 503 (Retry-After)
    page_queue: int = 64
    #: seconds a public page may wait for its turn before it is answered 503 instead
    page_max_wait: float = 0.5
    #: one line per HTTP request in the log (Twisted's combined log format, at info)
    access_log: bool = False


@attrs.define
class LoggingSettings:
    #: "text" (human) or "json" (one JSON object per line, for journald)
    format: str = "text"
    #: "debug", "info", "warn", "error"
    level: str = "info"


@attrs.define
class ShutdownSettings:
    #: seconds SIGTERM waits for running matches to end before recording them as aborted
    grace_period: float = 5.0


#: the core's own sections, in the order of the config file
CORE_SECTIONS: dict = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "accounts": AccountSettings,
    "http": HttpSettings,
    "logging": LoggingSettings,
    "shutdown": ShutdownSettings,
    "cluster": ClusterSettings,
}


def config_class(game_sections: dict) -> type:
    """The config class of a daemon serving these games ({section: settings class}):
    the core's sections and then each game's, all with their defaults."""
    sections = {**CORE_SECTIONS, **game_sections}
    return attrs.make_class("GamedConfig", {
        name: attrs.field(type=cls, factory=cls) for name, cls in sections.items()})


def listener_keys(config_type: type) -> tuple:
    """(section, key) of every listener, the games' first: what --SECTION-KEY overrides."""
    found = []
    for field in attrs.fields(config_type):
        for key in getattr(field.type, "LISTENERS", {}):
            found.append((field.name, key))
    return tuple(sorted(found, key=lambda pair: pair[0] in CORE_SECTIONS))


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def strict(kind):
        def structure(value, _type):
            # TOML already types its values; refuse silent coercions such as "5" -> 5.
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise TypeError("expected %s, got %s %r" % (kind.__name__, type(value).__name__,
                                                            value))
            return value
        return structure

    for kind in (int, float, str, bool):
        conv.register_structure_hook(kind, strict(kind))
    return conv


def _first_problem(exc: BaseException) -> str:
    """Turn cattrs' nested exception groups into one 'key: problem' line."""
    if isinstance(exc, (ClassValidationError, ExceptionGroup)):
        for line in cattrs.transform_error(exc, path="$", format_exception=_describe):
            problem, _, where = line.rpartition(" @ ")
            key = where.lstrip("$").lstrip(".") or "top level"
            return "%s: %s" % (key, problem)
    return str(exc)


def _describe(exc: BaseException, _type) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return "unknown key%s %s" % ("s" if len(exc.extra_fields) > 1 else "",
                                      ", ".join(sorted(exc.extra_fields)))
    if isinstance(exc, KeyError):
        return "required key missing"
    return str(exc)


def structure_config(data: dict[str, Any], config_type: type) -> Any:
    try:
        config = _converter().structure(data, config_type)
    except Exception as exc:  # cattrs reports through exception groups
        raise ConfigError(_first_problem(exc)) from None
    validate(config)
    return config


def load_config(path: str | None, config_type: type) -> Any:
    """Read and validate a config file; None means the built-in defaults."""
    if path is None:
        return structure_config({}, config_type)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("cannot read config %s: %s" % (path, exc.strerror)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config %s is not valid TOML: %s" % (path, exc)) from None
    return structure_config(data, config_type)


def validate(config) -> None:
    """Checks beyond types: ranges, endpoint syntax, database URL scheme."""
    from gamed.core.endpoints import check_endpoint
    from gamed.store.engines import parse_database_url

    try:
        parse_database_url(config.database.resolved_url())
    except ValueError as exc:
        raise ConfigError("database.url: %s" % exc) from None
    _check_cluster(config)
    _check_workers(config)
    if not 4 <= config.accounts.bcrypt_cost <= 31:
        raise ConfigError("accounts.bcrypt_cost: must be between 4 and 31")
    if config.accounts.bcrypt_threads < 1:
        raise ConfigError("accounts.bcrypt_threads: must be at least 1")
    admin_hash = config.http.admin_password_hash
    if admin_hash and not (len(admin_hash) == 60 and admin_hash[:4] in ("$2a$", "$2b$", "$2y$")):
        raise ConfigError("http.admin_password_hash: not a bcrypt hash (make one with "
                          "gamectl admin-password)")
    if config.logging.format not in ("text", "json"):
        raise ConfigError("logging.format: must be \"text\" or \"json\"")
    if config.logging.level not in ("debug", "info", "warn", "error"):
        raise ConfigError("logging.level: must be one of debug, info, warn, error")
    for section, key in listener_keys(type(config)):
        part = getattr(config, section)
        udp = type(part).LISTENERS[key] == "udp"
        try:
            check_endpoint(getattr(part, key), udp=udp)
        except ValueError as exc:
            raise ConfigError("%s.%s: %s" % (section, key, exc)) from None
    for field in attrs.fields(type(config)):
        section, limits = field.name, getattr(config, field.name)
        if not isinstance(limits, StreamLimits):
            continue
        for key in ("max_line_length", "burst", "max_connections", "max_send_buffer"):
            if getattr(limits, key) < 1:
                raise ConfigError("%s.%s: must be positive" % (section, key))
        if limits.rate <= 0:
            raise ConfigError("%s.rate: must be positive" % section)
        if 0 < limits.ping_interval < 2:  # autobahn's timers round to whole seconds
            raise ConfigError("%s.ping_interval: must be 0 (off) or at least 2 seconds"
                              % section)
    _check_ranges(config)


def _check_cluster(config) -> None:
    from gamed.cluster.settings import parse_redis_url

    cluster = config.cluster
    if not cluster.redis_url:
        return
    try:
        parse_redis_url(cluster.redis_url)
    except ValueError as exc:
        raise ConfigError("cluster.redis_url: %s" % exc) from None
    from gamed.store.engines import parse_database_url

    if parse_database_url(config.database.resolved_url()).scheme != "postgresql":
        raise ConfigError("cluster.redis_url: a cluster needs a postgresql:// database "
                          "(the nodes share it); SQLite serves one node alone")
    if cluster.timeout <= cluster.heartbeat:
        raise ConfigError("cluster.timeout: must be longer than cluster.heartbeat")
    if not cluster.key_prefix:
        raise ConfigError("cluster.key_prefix: must not be empty")


def _check_workers(config) -> None:
    from gamed.store.engines import parse_database_url

    workers = config.server.workers
    if workers != "auto" and (type(workers) is not int or workers < 1):
        raise ConfigError("server.workers: must be a number of processes (1 or more) or "
                          "\"auto\" (one per core)")
    count = config.server.worker_count()
    if count > 1 and (not config.cluster.redis_url or parse_database_url(
            config.database.resolved_url()).scheme != "postgresql"):
        raise ConfigError("server.workers: %d workers act as one server through PostgreSQL "
                          "and Redis: set a postgresql:// database.url and cluster.redis_url "
                          "(or workers = 1)" % count)


#: the core's numbers that must be above zero (a game's are its section's POSITIVE; every
#: other number of the config may not be negative; 0 disables where a key's comment says
#: so, e.g. idle_timeout)
POSITIVE = {
    ("database", "pool_size"), ("database", "query_timeout"),
    ("accounts", "bcrypt_queue_limit"), ("accounts", "session_ttl"),
    ("accounts", "address_burst"), ("accounts", "address_rate"),
    ("accounts", "account_burst"), ("accounts", "account_rate"),
    ("accounts", "max_password_length"), ("http", "admin_session_ttl"),
    ("http", "page_concurrency"), ("http", "page_max_wait"),
    ("cluster", "heartbeat"), ("cluster", "timeout"),
}


def _check_ranges(config) -> None:
    for section_field in attrs.fields(type(config)):
        section = getattr(config, section_field.name)
        if not attrs.has(type(section)):
            continue
        for field in attrs.fields(type(section)):
            value = getattr(section, field.name)
            if type(value) not in (int, float):
                continue
            where = (section_field.name, field.name)
            positive = where in POSITIVE or field.name in getattr(type(section), "POSITIVE", ())
            if positive and not value > 0:
                raise ConfigError("%s.%s: must be positive" % where)
            if value < 0:
                raise ConfigError("%s.%s: must not be negative" % where)


def set_option(config, section: str, key: str, value: Any):
    """A copy of config with section.key replaced (command-line overrides)."""
    part = attrs.evolve(getattr(config, section), **{key: value})
    return attrs.evolve(config, **{section: part})
