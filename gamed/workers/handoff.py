"""Workers of one server hand a client's TCP connection to each other.

Nodes of a cluster on different machines can only relay a player's frames to the node
that holds its match or room (docs/cluster.md); workers share one machine, so the worker
that accepted a connection can pass the socket itself to the worker that needs it (a
descriptor over a Unix socket, SCM_RIGHTS) and step aside. Each worker listens on
`<run dir>/<node>.handoff`; a handoff is one connection there carrying the descriptor
and one JSON line (`kind`, `family`, and what the receiving game needs to go on with
the client). The giving worker stops reading the socket first and closes its copy
without a shutdown (the connection stays open: the receiver holds it now); the receiver
adopts it (`adoptStreamConnection`) and the game picks up where the other worker left.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Callable

from twisted.application import internet
from twisted.internet import defer, interfaces, protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from zope.interface import implementer

log = Logger(namespace="gamed.workers")

SUFFIX = ".handoff"
MAX_HEADER = 1 << 20


@implementer(interfaces.IFileDescriptorReceiver)
class _Receiving(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_HEADER

    def __init__(self, handoff: "Handoff"):
        self.handoff = handoff
        self.fds: list = []

    def fileDescriptorReceived(self, descriptor):
        self.fds.append(descriptor)

    def lineReceived(self, line):
        fds, self.fds = self.fds, []
        try:
            header = json.loads(line)
            if len(fds) != 1:
                raise ValueError("expected one descriptor, got %d" % len(fds))
            self.handoff.received(fds[0], header)
        except Exception:
            log.failure("worker: a handed-over connection could not be taken")
            for fd in fds:
                os.close(fd)
        self.transport.loseConnection()


class _Giving(protocol.Protocol):
    def __init__(self, fd: int, header: bytes, done: defer.Deferred):
        self.fd, self.header, self.done = fd, header, done

    def connectionMade(self):
        self.transport.sendFileDescriptor(self.fd)
        self.transport.write(self.header)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(None)


class Handoff:
    """This worker's end: receivers by kind, and give(node, transport, kind, header)."""

    def __init__(self, reactor, node: str, nodes, directory: str):
        self.reactor = reactor
        self.node = node
        self.siblings = set(nodes) - {node}
        self.directory = directory
        self.receivers: dict[str, Callable] = {}

    def path(self, node: str) -> str:
        return os.path.join(self.directory, node + SUFFIX)

    def service(self):
        factory = protocol.Factory.forProtocol(lambda: _Receiving(self))
        factory.noisy = False
        try:
            os.unlink(self.path(self.node))  # this worker's earlier run
        except OSError:
            pass
        return internet.UNIXServer(self.path(self.node), factory)

    def register(self, kind: str, receiver: Callable) -> None:
        """receiver(transport_maker, header) where transport_maker(factory) adopts the
        connection with that factory and returns the protocol it built."""
        self.receivers[kind] = receiver

    def can_give(self, node: str, transport) -> bool:
        """A plain TCP connection with nothing unsent, to a worker of this server."""
        from gamed.core.transport import unsent_bytes

        return (node in self.siblings and getattr(transport, "socket", None) is not None
                and not getattr(transport, "TLS", False) and unsent_bytes(transport) == 0)

    def lines_connection(self, channel, node: str):
        """The TCP transport and JSON-lines protocol behind a game's `channel` when its
        connection can go to worker `node` (JSON lines, open, nothing queued or unsent);
        None when it cannot (a WebSocket's framing state lives in autobahn: it stays)."""
        from gamed.core.lines import JsonLinesProtocol

        tcp = getattr(channel, "_tcp", None)
        proto = getattr(tcp, "protocol", None)
        if (not isinstance(proto, JsonLinesProtocol) or getattr(channel, "outbox", None)
                or getattr(channel, "closed", True) or not self.can_give(node, tcp)):
            return None
        return tcp, proto

    def give(self, node: str, transport, kind: str, header: dict) -> defer.Deferred:
        """Send the connection to `node` (the caller has stopped reading it); fires once
        it is on its way. The local transport is then closed without a shutdown."""
        transport.stopReading()
        family = "INET6" if transport.socket.family == socket.AF_INET6 else "INET"
        line = json.dumps(dict(header, kind=kind, family=family)).encode("utf-8") + b"\n"
        done = defer.Deferred()
        fd = transport.fileno()
        self.reactor.connectUNIX(self.path(node), _GivingFactory(fd, line, done))

        def sent(result):
            transport._shouldShutdown = False  # the other worker holds the connection now
            transport.loseConnection()
            return result

        return done.addCallback(sent)

    def received(self, fd: int, header: dict) -> None:
        receiver = self.receivers.get(header.get("kind"))
        if receiver is None:
            raise ValueError("no receiver for %r" % header.get("kind"))
        family = socket.AF_INET6 if header.get("family") == "INET6" else socket.AF_INET

        def adopt(factory):
            built = []
            capture = _Capturing(factory, built)
            try:
                self.reactor.adoptStreamConnection(fd, family, capture)
            finally:
                os.close(fd)  # the reactor holds its own duplicate
            return built[0]

        receiver(adopt, header)


class _GivingFactory(protocol.ClientFactory):
    noisy = False

    def __init__(self, fd, line, done):
        self.fd, self.line, self.done = fd, line, done

    def buildProtocol(self, addr):
        return _Giving(self.fd, self.line, self.done)

    def clientConnectionFailed(self, connector, reason):
        self.done.errback(reason)


class _Capturing(protocol.Factory):
    """Builds with another factory and keeps the protocol it built."""

    noisy = False

    def __init__(self, factory, built: list):
        self.factory, self.built = factory, built

    def buildProtocol(self, addr):
        proto = self.factory.buildProtocol(addr)
        self.built.append(proto)
        return proto
