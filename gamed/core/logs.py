"""Log output chosen by config: text for people, JSON lines for journald and collectors.

Secrets never reach a log: no code logs a password, token or hash, and as a second line of
defence the JSON observer drops event fields whose names say they hold one.
"""

from __future__ import annotations

import datetime
import json
import sys
from typing import IO

from twisted.logger import (FilteringLogObserver, ILogObserver, LogLevel,
                            LogLevelFilterPredicate, formatEvent, textFileLogObserver)
from zope.interface import implementer

SECRET_WORDS = ("password", "passwd", "pw", "token", "hash", "secret")
LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
          "error": LogLevel.error}


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(word == lowered or lowered.endswith("_" + word) or lowered.startswith(word + "_")
               for word in SECRET_WORDS)


@implementer(ILogObserver)
class JsonLinesObserver:
    """One JSON object per line: time, level, namespace, message, and the simple fields."""

    def __init__(self, out: IO[str]):
        self.out = out

    def __call__(self, event: dict) -> None:
        level = event.get("log_level")
        record = {
            "time": datetime.datetime.fromtimestamp(
                event.get("log_time", 0), datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "level": level.name if level is not None else "info",
            "namespace": event.get("log_namespace", "-"),
            "message": _message(event),
        }
        for key, value in event.items():
            if key.startswith("log_") or key in record or is_secret_field(key):
                continue
            if isinstance(value, (str, int, float, bool)) or value is None:
                record[key] = value
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        self.out.write(json.dumps(record, default=str) + "\n")
        self.out.flush()


def _message(event: dict) -> str:
    try:
        text = formatEvent(event)
    except Exception:  # a broken format string must not lose the event
        text = str(event.get("log_format"))
    return text or ""


def make_observer(fmt: str, level: str, out: IO[str] | None = None):
    out = out or sys.stdout
    base = JsonLinesObserver(out) if fmt == "json" else textFileLogObserver(out)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(base, [predicate])


def log_failure(logger, format: str, failure=None, **kwargs) -> None:
    """`logger.failure(format, failure, **kwargs)`, except for a database that is away:
    that is an operational state, not a bug, and gets one warning line without a
    traceback (the database logs when it goes and when it comes back)."""
    from gamed.store.database import DatabaseUnavailable

    if failure is not None and failure.check(DatabaseUnavailable):
        logger.warn(format + " (database unavailable: {db_problem})",
                    db_problem=failure.getErrorMessage(), **kwargs)
    else:
        logger.failure(format, failure, **kwargs)
