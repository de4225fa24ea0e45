"""Who is online, in which game (in memory; the HTTP API and friend lists read it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable


class Presence:
    def __init__(self):
        self._sessions: dict[int, dict[str, int]] = defaultdict(dict)  # account -> game -> count
        self._watchers: list[Callable[[int, str, bool], None]] = []

    def watch(self, callback: Callable[[int, str, bool], None]) -> None:
        """callback(account_id, game, online) whenever an account comes or goes in a game."""
        self._watchers.append(callback)

    def arrived(self, account_id: int, game: str) -> None:
        games = self._sessions[account_id]
        games[game] = games.get(game, 0) + 1
        if games[game] == 1:
            self._tell(account_id, game, True)

    def left(self, account_id: int, game: str) -> None:
        games = self._sessions.get(account_id)
        if not games or game not in games:
            return
        games[game] -= 1
        if games[game] <= 0:
            del games[game]
            if not games:
                del self._sessions[account_id]
            self._tell(account_id, game, False)

    def games_of(self, account_id: int) -> list[str]:
        return sorted(self._sessions.get(account_id, {}))

    def is_online(self, account_id: int, game: str | None = None) -> bool:
        games = self._sessions.get(account_id, {})
        return bool(games) if game is None else game in games

    def count(self, game: str) -> int:
        return sum(1 for games in self._sessions.values() if game in games)

    def _tell(self, account_id: int, game: str, online: bool) -> None:
        for callback in list(self._watchers):
            callback(account_id, game, online)
