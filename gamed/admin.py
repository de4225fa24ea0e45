"""gamectl: the operator's command line (migrations, users, sessions, leaderboards, matches).

Works on the database named by --database or the config file (same defaults as the
daemon). Exit status: 0 done, 1 the operation failed (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import random
import sys

from twisted.internet import defer, task

from gamed.core import operator
from gamed.core.accounts import AuthError
from gamed.core.config import ConfigError, set_option
from gamed.games import load_config
from gamed.store.database import blocking_connect, run_blocking
from gamed.store.engines import create_engine
from gamed.store.migrations import SchemaError, current_version, known_migrations, migrate, pending

GAMES = ("novaglide", "blockattack", "uttt", "rooms")


class Failed(Exception):
    """An operation failed; the message is for the operator."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gamectl", description=__doc__.split("\n\n")[0])
    top.add_argument("--config", "-c", help="gamed TOML config (for [database] and [accounts])")
    top.add_argument("--database", "-d", help="database URL (overrides the config)")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending schema migrations")
    sub.add_parser("check", help="database reachable and schema current (exit 1 if not)")
    admin = sub.add_parser("admin-password",
                           help="print a bcrypt hash for [http] admin_password_hash")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin")

    user = sub.add_parser("user", help="manage accounts").add_subparsers(dest="action",
                                                                          required=True)
    for action, text in (("create", "register an account"), ("passwd", "set a new password")):
        p = user.add_parser(action, help=text)
        p.add_argument("name")
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin")
    for action, text in (("ban", "ban (and log out)"), ("unban", "lift a ban"),
                         ("delete", "delete the account and its history")):
        user.add_parser(action, help=text).add_argument("name")

    sessions = sub.add_parser("sessions", help="session tokens").add_subparsers(
        dest="action", required=True)
    sessions.add_parser("revoke", help="log a user out everywhere").add_argument("name")

    board = sub.add_parser("leaderboard", help="top players of a game")
    board.add_argument("game", choices=GAMES)
    board.add_argument("--limit", type=int, default=20)
    board.add_argument("--json", action="store_true")

    matches = sub.add_parser("matches", help="recent matches, newest first")
    matches.add_argument("--player")
    matches.add_argument("--game", choices=GAMES)
    matches.add_argument("--limit", type=positive_int, default=20)
    fmt = matches.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    return top


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def load(args):
    config = load_config(args.config)
    if args.database:
        config = set_option(config, "database", "url", args.database)
        from gamed.core.config import validate

        validate(config)
    return config


def engine_of(config):
    return create_engine(config.database.resolved_url(), 1, config.database.connect_timeout)


def cmd_migrate(config, args, out) -> int:
    engine = engine_of(config)
    try:
        applied = run_blocking(engine, migrate, connection=_connect(engine, create=True))
    except (Failed, SchemaError):
        raise
    except Exception as exc:  # the database refused a statement: one line, exit 1
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Failed("migrating %s failed: %s" % (engine.describe(), first_line))
    print("database %s" % _where(engine), file=out)
    for migration in applied:
        print("applied %03d %s" % (migration.version, migration.name), file=out)
    if not applied:
        print("schema is current (version %03d)" % known_migrations()[-1].version, file=out)
    return 0


def cmd_check(config, args, out) -> int:
    engine = engine_of(config)
    connection = _connect(engine)
    todo = run_blocking(engine, pending, False, connection=connection)  # changes nothing
    version = run_blocking(engine, current_version, False, connection=connection)
    connection.close()
    print("database %s reachable, schema version %03d" % (engine.describe(), version), file=out)
    if todo:
        print("pending migrations: %s (run gamectl migrate)"
              % ", ".join("%03d_%s" % (m.version, m.name) for m in todo), file=out)
        return 1
    print("schema current", file=out)
    return 0


def cmd_admin_password(config, args, out) -> int:
    """The hash to put in [http] admin_password_hash (the /admin console's password)."""
    import bcrypt

    from gamed.core.accounts import bcrypt_secret

    password = read_password(args)
    if len(password) < 8:
        raise Failed("the console password must be at least 8 characters")
    hashed = bcrypt.hashpw(bcrypt_secret(password),
                           bcrypt.gensalt(config.accounts.bcrypt_cost)).decode("ascii")
    print("admin_password_hash = %s" % json.dumps(hashed), file=out)
    return 0


def _where(engine) -> str:
    url = engine.url
    return url.path if url.scheme == "sqlite" else "%s@%s:%d/%s" % (
        url.user, url.host, url.port, url.dbname)


def _connect(engine, create: bool = False):
    """A connection; an SQLite file that does not exist yet is made only by migrate (a
    relative path resolves from the working directory: another directory, another file)."""
    url = engine.url
    if (url.scheme == "sqlite" and url.path != ":memory:" and not create
            and not os.path.exists(url.path)):
        raise Failed("no database at %s (gamectl migrate makes one; is database.url the "
                     "daemon's, and relative to the same working directory?)" % url.path)
    try:
        return blocking_connect(engine)
    except Exception as exc:
        raise Failed("cannot reach %s: %s" % (engine.describe(), str(exc).strip() or exc)) \
            from None


def read_password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\n").rstrip("\r")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise Failed("the passwords differ")
    return first


@defer.inlineCallbacks
def with_core(config, work):
    """Run work(core) on a Core over the configured database (the reactor is running)."""
    from twisted.internet import reactor

    from gamed.core.metrics import Metrics
    from gamed.core.runtime import build_core
    from gamed.store.database import Database

    engine = engine_of(config)
    connection = _connect(engine)
    try:
        if run_blocking(engine, pending, False, connection=connection):
            raise Failed("the schema is not current: run gamectl migrate first")
    except SchemaError as exc:
        raise Failed(str(exc)) from None
    finally:
        connection.close()
    metrics = Metrics()
    database = Database(config.database.resolved_url(), 1, metrics=metrics)
    database.start()
    core = build_core(reactor, config, database, metrics, random.Random())
    core.accounts.startService()
    try:
        result = yield defer.ensureDeferred(work(core))
    finally:
        yield core.accounts.stopService()
        database.close()
    return result


def operator_name() -> str:
    """Who runs gamectl, for the log lines of its actions."""
    try:
        return "gamectl:%s" % getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "gamectl"


async def find(core, name):
    try:
        return await operator.find(core, name)
    except operator.OperatorError as exc:
        raise Failed(str(exc)) from None


def user_command(args, password):
    """gamectl user ...: the same functions as the /admin console (gamed.core.operator)."""
    actions = {
        "create": lambda core, by: operator.create(core, args.name, password, by),
        "passwd": lambda core, by: operator.set_password(core, args.name, password, by),
        "ban": lambda core, by: operator.ban(core, args.name, by),
        "unban": lambda core, by: operator.unban(core, args.name, by),
        "delete": lambda core, by: operator.delete(core, args.name, by),
    }

    async def work(core):
        try:
            return await actions[args.action](core, operator_name())
        except operator.OperatorError as exc:
            raise Failed(str(exc)) from None

    return work


def sessions_command(args):
    async def work(core):
        try:
            return await operator.revoke_sessions(core, args.name, operator_name())
        except operator.OperatorError as exc:
            raise Failed(str(exc)) from None

    return work


def leaderboard_command(args):
    async def work(core):
        rows = await core.ratings.leaderboard(args.game, args.limit)
        if args.json:
            return json.dumps([{"rank": r.rank, "name": r.name, "rating": round(r.rating, 2),
                                "wins": r.wins, "losses": r.losses, "draws": r.draws}
                               for r in rows], indent=1)
        lines = ["%4s  %-32s %8s %5s %5s %5s" % ("rank", "name", "rating", "won", "lost", "drawn")]
        lines += ["%4d  %-32s %8.1f %5d %5d %5d" % (r.rank, r.name, r.rating, r.wins, r.losses,
                                                   r.draws) for r in rows]
        return "\n".join(lines)

    return work


def matches_command(args):
    async def work(core):
        player_id = (await find(core, args.player)).id if args.player else None
        rows = await core.ratings.matches(args.game, player_id, args.limit)
        if args.json:
            return json.dumps(rows, indent=1)
        if args.csv:
            import io

            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["id", "game", "ended_at", "reason", "ranked", "players", "outcomes",
                             "scores"])
            for m in rows:
                writer.writerow([m["id"], m["game"], m["ended_at"], m["reason"], m["ranked"],
                                 " ".join(p["name"] for p in m["players"]),
                                 " ".join(p["outcome"] for p in m["players"]),
                                 " ".join(str(p["score"]) for p in m["players"])])
            return buffer.getvalue().rstrip("\n")
        return "\n".join(
            "%6d %-11s %s %-10s %s" % (m["id"], m["game"], m["ended_at"][:19], m["reason"],
                                       ", ".join("%s %s (%g)" % (p["name"], p["outcome"],
                                                                  p["score"])
                                                 for p in m["players"]))
            for m in rows) or "no matches"

    return work


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    try:
        config = load(args)
        if args.command == "migrate":
            return cmd_migrate(config, args, out)
        if args.command == "check":
            return cmd_check(config, args, out)
        if args.command == "admin-password":
            return cmd_admin_password(config, args, out)
        if args.command == "user":
            password = read_password(args) if args.action in ("create", "passwd") else None
            work = user_command(args, password)
        elif args.command == "sessions":
            work = sessions_command(args)
        elif args.command == "leaderboard":
            work = leaderboard_command(args)
        else:
            work = matches_command(args)
        return run_reactor(config, work, out)
    except (ConfigError, Failed, SchemaError) as exc:
        print("gamectl: %s" % exc, file=sys.stderr)
        return 1


def run_reactor(config, work, out) -> int:
    outcome = {}

    def go(reactor):
        d = with_core(config, work)

        def done(text):
            print(text, file=out)
            outcome["code"] = 0

        def failed(failure):
            error = failure.value
            if isinstance(error, AuthError):
                message = error.message
            elif isinstance(error, (Failed, SchemaError)):
                message = str(error)
            else:
                message = "%s: %s" % (type(error).__name__, error)
            print("gamectl: %s" % message, file=sys.stderr)
            outcome["code"] = 1

        return d.addCallbacks(done, failed)

    try:
        task.react(go)
    except SystemExit:
        pass
    return outcome.get("code", 1)


if __name__ == "__main__":
    sys.exit(main())
