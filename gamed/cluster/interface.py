"""What the games are given to act across nodes: presence, match queues and a bus.

The games never see Redis: `core.cluster` is a `Cluster` (`gamed.cluster.local` for one
node, in process, at today's speed; `gamed.cluster.redis` for many). Every method that
reads is synchronous (each node mirrors what it needs in memory); writes to shared state
return Deferreds.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Protocol

from twisted.internet import defer

class ClusterUnavailable(Exception):
    """The shared state cannot be reached right now (this node is cut off)."""


#: callback(account_id, game, online) when an account comes or goes in a game, anywhere
PresenceWatcher = Callable[[int, str, bool], None]
#: handler(message, sender_node) for a message another node sent on a topic
BusHandler = Callable[[dict, str], None]
#: callback(node) when another node is gone (see `Cluster.on_node_gone`)
NodeGoneCallback = Callable[[str], None]


class Presence(Protocol):
    """Who is online in which game, on every node of the cluster."""

    node: str

    def arrived(self, account_id: int, game: str) -> None:
        """One more session of the account in the game on this node."""

    def left(self, account_id: int, game: str) -> None:
        """One session fewer (the account goes offline here when it was the last)."""

    def is_online(self, account_id: int, game: Optional[str] = None) -> bool:
        """Online on any node (in the game, or in any game)."""

    def games_of(self, account_id: int) -> list[str]:
        """Sorted names of the games it is online in, anywhere."""

    def here(self, account_id: int, game: Optional[str] = None) -> bool:
        """Online on this node."""

    def nodes_of(self, account_id: int, game: str) -> set[str]:
        """The other nodes where it is online in the game (empty on one node)."""

    def count(self, game: str) -> int:
        """Accounts online in the game, anywhere."""

    def watch(self, callback: PresenceWatcher) -> None:
        """Call back on every change of the cluster-wide view."""

    def take_over(self, game: str, account_id: int) -> None:
        """This node now holds the account's one session in the game: the other nodes'
        `on_taken_over` callbacks for the game end theirs."""

    def on_taken_over(self, game: str, callback: Callable[[int], None]) -> None:
        """callback(account_id) when another node took the account's session over."""


class Bus(Protocol):
    """Messages between nodes, fire and forget, in order per sender (at most once: a
    node cut off from the others misses what was sent meanwhile)."""

    node: str

    def publish(self, topic: str, message: dict,
                nodes: Optional[Iterable[str]] = None) -> None:
        """Send to the named nodes (all others when None); never to this node."""

    def subscribe(self, topic: str, handler: BusHandler) -> None:
        """handler(message, sender) for every message on the topic sent to this node."""


class MatchQueue(Protocol):
    """Players waiting for a random opponent, one queue per game for the cluster.

    An entry is a JSON-able dict that holds at least `node` (where the player is); `take`
    removes several entries at once, all or none, so two nodes never pair one player
    twice. While this node is cut off from the cluster the queue is its own: players who
    join meanwhile wait and are paired here (those who waited before the cut are offered
    again once the node is back), and all of them wait in the cluster's queue again when
    it is back.
    """

    def join(self, game: str, key: str, entry: dict) -> defer.Deferred:
        """Wait (replacing an earlier entry of the same key)."""

    def leave(self, game: str, key: str) -> defer.Deferred:
        """Stop waiting (nothing happens when it was not)."""

    def entries(self, game: str) -> defer.Deferred:
        """{key: entry} of every player waiting."""

    def take(self, game: str, keys: Iterable[str]) -> defer.Deferred:
        """{key: entry} when every key was waiting (they are removed), else None."""

    def on_taken(self, game: str, callback: Callable[[str], None]) -> None:
        """callback(key) on the node that queued an entry when another node takes it."""


class Directory(Protocol):
    """Which node holds a named thing (a room's invite code, ...): claimed by the node
    that made it, released when it is gone, forgotten with a dead node."""

    def claim(self, kind: str, key: str) -> defer.Deferred:
        """This node holds it."""

    def release(self, kind: str, key: str) -> defer.Deferred:
        """It is gone."""

    def lookup(self, kind: str, key: str) -> defer.Deferred:
        """The node holding it, or None."""


class Cluster(Protocol):
    node: str
    presence: Presence
    bus: Bus
    queue: MatchQueue
    directory: Directory
    #: True with other nodes possible (Redis); False for one node alone
    clustered: bool

    def problem(self) -> Optional[str]:
        """Why this node is cut off from the cluster (for /healthz), or None."""

    def on_rejoined(self, callback: Callable[[], None]) -> None:
        """callback() each time this node is back in the cluster after a cut (messages
        sent to it meanwhile were lost: a game brings its players up to date)."""

    def is_up(self, node: str) -> bool:
        """`node` is this one or another node this node sees alive (a node just started
        may not be seen for up to one heartbeat; a gone node is not, until it joins
        again): what to pair with a player of it is to be held on."""

    def on_node_gone(self, callback: NodeGoneCallback) -> None:
        """callback(node) once when another node is gone: it left (drained), died (its
        heartbeat timed out), restarted (a new run under the same name), or this node
        lost it (cut off from the cluster past the timeout, or counted dead by the
        others). Whatever this node holds for that node's players (forwarding, remote
        match seats, tunnels) is to be torn down: nothing more will come from it, and
        nothing sent there will be acted on. Called after its players are forgotten."""
