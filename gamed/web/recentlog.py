"""The last warnings and errors of the daemon's log, kept in memory for /admin (a log
observer the HTTP service adds while it runs)."""

from __future__ import annotations

from collections import deque

import attrs
from twisted.logger import LogLevel, formatEvent

LEVELS = (LogLevel.warn, LogLevel.error, LogLevel.critical)


@attrs.frozen
class Problem:
    time: float
    level: str
    namespace: str
    text: str


class RecentProblems:
    def __init__(self, size: int = 50):
        self.events: deque = deque(maxlen=size)

    def __call__(self, event: dict) -> None:
        if event.get("log_level") not in LEVELS:
            return
        try:
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += "\n%s: %s" % (failure.type.__name__, failure.getErrorMessage())
        except Exception:  # noqa: BLE001 - an observer must never raise
            text = repr(event.get("log_format"))
        self.events.append(Problem(event.get("log_time") or 0.0, event["log_level"].name,
                                   event.get("log_namespace", "?"), text[:2000]))

    def newest(self, count: int = 30) -> list:
        return list(reversed(self.events))[:count]
