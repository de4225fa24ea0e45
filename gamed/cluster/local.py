"""One node alone: presence, queue and bus in process memory (no Redis, today's speed)."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Optional

from twisted.application import service
from twisted.internet import defer

from gamed.cluster.interface import BusHandler, PresenceWatcher


class LocalPresence:
    """Who is online in which game on this node; the cluster's presence adds the others."""

    def __init__(self, node: str = "local"):
        self.node = node
        self._sessions: dict[int, dict[str, int]] = defaultdict(dict)  # account -> game -> n
        self._watchers: list[PresenceWatcher] = []
        self._takeover: dict[str, list[Callable[[int], None]]] = {}

    def watch(self, callback: PresenceWatcher) -> None:
        self._watchers.append(callback)

    def arrived(self, account_id: int, game: str) -> None:
        games = self._sessions[account_id]
        games[game] = games.get(game, 0) + 1
        if games[game] == 1:
            self._local_changed(account_id, game, True)

    def left(self, account_id: int, game: str) -> None:
        games = self._sessions.get(account_id)
        if not games or game not in games:
            return
        games[game] -= 1
        if games[game] <= 0:
            del games[game]
            if not games:
                del self._sessions[account_id]
            self._local_changed(account_id, game, False)

    def _local_changed(self, account_id: int, game: str, online: bool) -> None:
        self._tell(account_id, game, online)

    def here(self, account_id: int, game: Optional[str] = None) -> bool:
        games = self._sessions.get(account_id, {})
        return bool(games) if game is None else game in games

    def local_games(self) -> dict[int, list[str]]:
        """{account_id: [games]} of this node's sessions (a snapshot for the cluster)."""
        return {account: sorted(games) for account, games in self._sessions.items()}

    def games_of(self, account_id: int) -> list[str]:
        return sorted(self._sessions.get(account_id, {}))

    def is_online(self, account_id: int, game: Optional[str] = None) -> bool:
        return self.here(account_id, game)

    def nodes_of(self, account_id: int, game: str) -> set[str]:
        return set()

    def count(self, game: str) -> int:
        return sum(1 for games in self._sessions.values() if game in games)

    def take_over(self, game: str, account_id: int) -> None:
        """One node: the game itself ends an earlier session on this node."""

    def on_taken_over(self, game: str, callback: Callable[[int], None]) -> None:
        self._takeover.setdefault(game, []).append(callback)

    def _tell(self, account_id: int, game: str, online: bool) -> None:
        for callback in list(self._watchers):
            callback(account_id, game, online)


class LocalBus:
    """No other node to talk to: publishing reaches nobody."""

    def __init__(self, node: str = "local"):
        self.node = node
        self.handlers: dict[str, list[BusHandler]] = {}

    def publish(self, topic: str, message: dict,
                nodes: Optional[Iterable[str]] = None) -> None:
        pass

    def subscribe(self, topic: str, handler: BusHandler) -> None:
        self.handlers.setdefault(topic, []).append(handler)


class LocalQueue:
    """The waiting players of each game in a dict; every answer is already fired."""

    def __init__(self):
        self._games: dict[str, dict[str, dict]] = {}

    def join(self, game: str, key: str, entry: dict) -> defer.Deferred:
        self._games.setdefault(game, {})[key] = entry
        return defer.succeed(None)

    def leave(self, game: str, key: str) -> defer.Deferred:
        self._games.get(game, {}).pop(key, None)
        return defer.succeed(None)

    def entries(self, game: str) -> defer.Deferred:
        return defer.succeed(dict(self._games.get(game, {})))

    def take(self, game: str, keys: Iterable[str]) -> defer.Deferred:
        waiting = self._games.get(game, {})
        keys = list(keys)
        if not all(key in waiting for key in keys):
            return defer.succeed(None)
        return defer.succeed({key: waiting.pop(key) for key in keys})

    def on_taken(self, game: str, callback: Callable[[str], None]) -> None:
        """One node: whoever takes an entry is the node that queued it."""


class LocalDirectory:
    """Everything is on this node."""

    def __init__(self, node: str = "local"):
        self.node = node
        self._kinds: dict[str, set] = {}

    def claim(self, kind: str, key: str) -> defer.Deferred:
        self._kinds.setdefault(kind, set()).add(key)
        return defer.succeed(None)

    def release(self, kind: str, key: str) -> defer.Deferred:
        self._kinds.get(kind, set()).discard(key)
        return defer.succeed(None)

    def lookup(self, kind: str, key: str) -> defer.Deferred:
        return defer.succeed(self.node if key in self._kinds.get(kind, ()) else None)


class LocalCluster(service.Service):
    """A cluster of one node: what `[cluster] redis_url = ""` runs."""

    name = "cluster"
    clustered = False

    def __init__(self, node: str = "local"):
        self.node = node
        self.presence = LocalPresence(node)
        self.bus = LocalBus(node)
        self.queue = LocalQueue()
        self.directory = LocalDirectory(node)

    def problem(self) -> Optional[str]:
        return None

    def on_rejoined(self, callback: Callable[[], None]) -> None:
        """One node is never cut off from itself."""

    def is_up(self, node: str) -> bool:
        return node == self.node

    def on_node_gone(self, callback: Callable[[str], None]) -> None:
        """There is no other node to lose."""
