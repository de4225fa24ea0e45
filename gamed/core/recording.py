"""Storing a match result with retries: what every game does before it announces one."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.logger import Logger

log = Logger(namespace="gamed.recording")

ATTEMPTS = 3
RETRY_DELAY = 1.0  # seconds between attempts


def record_with_retries(ratings, result, clock, service: str, attempts: int = ATTEMPTS,
                        delay: float = RETRY_DELAY) -> defer.Deferred:
    """`ratings.record_match(result)`, tried again after a failure (a database that went
    away for a moment). Give the result a `key`: a write that was committed but whose
    answer was lost is then found, not stored twice. A slow write is waited for, never
    given up on (the database thread would still commit it)."""
    d = ratings.record_match(result)

    def retry(failure):
        if attempts <= 1:
            return failure
        log.warn("{service}: recording a result failed ({problem}); retrying",
                 service=service, problem=failure.getErrorMessage())
        return task.deferLater(clock, delay, record_with_retries, ratings, result, clock,
                               service, attempts - 1, delay)

    d.addErrback(retry)
    return d
