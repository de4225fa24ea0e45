"""Block Attack across the nodes of a cluster: `connect` meets in the cluster's queue, the
game runs on the node that paired the two, and the other node forwards its player's
datagrams there (and the game's datagrams back, from the address the player talks to).

A player on another node has a `RemoteAddress` (node, host, port) in the hosting node's
game: the game binds it like any address (anti-spoofing holds: only the player's own node
forwards, and only what arrived from the bound address), and every size rule of the
service applies to it unchanged (no amplification through forwarding). Datagrams travel
on the bus as latin-1 text (bytes unchanged).
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import defer
from twisted.logger import Logger

from gamed.cluster.interface import ClusterUnavailable

log = Logger(namespace="gamed.blockattack")

GAME = "blockattack"


class RemoteAddress(tuple):
    """(node, host, port): a player reached through another node."""

    __slots__ = ()

    def __new__(cls, node: str, host: str, port: int):
        return tuple.__new__(cls, (node, host, port))

    @property
    def node(self) -> str:
        return self[0]

    @property
    def local(self) -> tuple:
        return (self[1], self[2])


def queue_key(name: str, opponent: str) -> str:
    return "%s>%s" % (name.casefold(), opponent.casefold())


class Forwarding:
    """The cluster side of the service: datagrams in and out, and pairing across nodes."""

    def __init__(self, service, cluster):
        self.service = service
        self.cluster = cluster
        self.node = cluster.node
        self.bus = cluster.bus
        self.queue = cluster.queue
        self.routes: dict = {}  # local address -> node whose game it plays in
        self.bus.subscribe("blockattack.in", self._incoming)
        self.bus.subscribe("blockattack.out", self._outgoing)
        self.bus.subscribe("blockattack.route", self._route)
        cluster.on_node_gone(self.node_gone)

    # -- datagrams ----------------------------------------------------------------------

    def intercept(self, data: bytes, address) -> bool:
        """A datagram from a player whose game runs on another node: sent there."""
        node = self.routes.get(address)
        if node is None:
            return False
        self.bus.publish("blockattack.in", {"a": list(address), "d": data.decode("latin-1")},
                         [node])
        return True

    def write(self, data: bytes, address) -> bool:
        """Send through the player's node when it is on another one (True if done)."""
        if not isinstance(address, RemoteAddress):
            return False
        self.bus.publish("blockattack.out", {"a": list(address.local),
                                             "d": data.decode("latin-1")}, [address.node])
        return True

    def _incoming(self, message: dict, sender: str) -> None:
        host, port = message["a"]
        self.service.datagramReceived(message["d"].encode("latin-1"),
                                      RemoteAddress(sender, host, port))

    def _outgoing(self, message: dict, sender: str) -> None:
        address = tuple(message["a"])
        if self.routes.get(address) != sender or self.service.transport is None:
            return  # not a player this node forwards to that node (any more)
        self.service.transport.write(message["d"].encode("latin-1"), address)

    def _route(self, message: dict, sender: str) -> None:
        address = tuple(message["a"])
        if message.get("to"):
            self.routes[address] = message["to"]
            self.service.waiting_taken(address)
        elif self.routes.get(address) == sender:
            del self.routes[address]

    def release(self, addresses) -> None:
        """A game hosted here is forgotten: its remote players' nodes stop forwarding."""
        for address in addresses:
            if isinstance(address, RemoteAddress):
                self.bus.publish("blockattack.route", {"a": list(address.local)},
                                 [address.node])

    def node_gone(self, node: str) -> None:
        """Nothing more goes to or comes from `node`: this node's players whose game ran
        there are no longer forwarded (their next datagram for it is answered
        `unknown_game`; they may connect again), and the games run here lose their
        players who played through it."""
        for address, to in list(self.routes.items()):
            if to == node:
                del self.routes[address]
        self.service.players_lost(
            lambda address: isinstance(address, RemoteAddress) and address.node == node)

    # -- pairing --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def seek(self, entry) -> Optional[object]:
        """`entry` (a Waiting here) waits in the cluster's queue too; when its opponent
        waits on another node, both are taken at once (never by two nodes) and the
        opponent's Waiting, with its RemoteAddress, is returned."""
        mine = queue_key(entry.name, entry.opponent)
        theirs = queue_key(entry.opponent, entry.name)
        host, port = entry.address
        yield self.queue.join(GAME, mine, {"name": entry.name, "opponent": entry.opponent,
                                           "host": host, "port": port, "size": entry.size,
                                           "since": entry.since})
        taken = yield self.queue.take(GAME, [mine, theirs])
        if taken is None:
            return None
        other = taken[theirs]
        if other.get("node") == self.node:
            return None  # both here: the service pairs them itself
        if not self.cluster.is_up(other.get("node")):
            # its node is gone (its entries are being purged): this player waits on
            yield self.queue.join(GAME, mine, taken[mine])
            return None
        address = RemoteAddress(other["node"], other["host"], other["port"])
        # that node forwards its player's datagrams here from now on
        self.bus.publish("blockattack.route", {"a": [other["host"], other["port"]],
                                               "to": self.node}, [other["node"]])
        return (other, address)

    def leave(self, entry) -> None:
        self.queue.leave(GAME, queue_key(entry.name, entry.opponent)).addErrback(
            lambda f: None if f.check(ClusterUnavailable) else log.warn(
                "blockattack: leaving the queue failed: {e}", e=f.getErrorMessage()))
