"""What each game is doing right now (running matches, live connections by account), for
the web pages and the operator console. Games register a `GameMonitor`; nothing here
knows a game's internals."""

from __future__ import annotations

from typing import Callable, Optional

import attrs
from twisted.internet import defer


@attrs.frozen
class RunningMatch:
    """One match in progress, as the operator console lists it."""

    game: str
    id: str
    players: tuple  # names
    started_at: Optional[float] = None  # seconds since the epoch


@attrs.define
class GameMonitor:
    #: how many matches run now (cheap: the public pages poll it)
    count: Callable[[], int]
    #: the running matches, newest first where the game knows
    running: Callable[[], list] = list
    #: end_match(match_id) -> Deferred: the operator ends a match (recorded as the game's
    #: own "aborted" kind of result); None when the game offers no way
    end_match: Optional[Callable[[str], defer.Deferred]] = None
    #: disconnect(account_id) -> number of connections closed (a ban takes effect)
    disconnect: Optional[Callable[[int], int]] = None


class UnknownMatch(Exception):
    """No running match with that id in that game."""


class Live:
    """The registry of game monitors, by game name."""

    def __init__(self):
        self.games: dict[str, GameMonitor] = {}

    def register(self, game: str, monitor: GameMonitor) -> None:
        self.games[game] = monitor

    def count(self, game: str) -> int:
        monitor = self.games.get(game)
        return monitor.count() if monitor is not None else 0

    def running(self, game: str) -> list:
        monitor = self.games.get(game)
        return list(monitor.running()) if monitor is not None else []

    def end_match(self, game: str, match_id: str) -> defer.Deferred:
        monitor = self.games.get(game)
        if monitor is None or monitor.end_match is None:
            return defer.fail(UnknownMatch("%s matches cannot be ended from here" % game))
        return defer.maybeDeferred(monitor.end_match, match_id)

    def disconnect(self, account_id: int) -> int:
        """Close every live connection of the account in every game; how many closed."""
        return sum(monitor.disconnect(account_id) for monitor in self.games.values()
                   if monitor.disconnect is not None)
