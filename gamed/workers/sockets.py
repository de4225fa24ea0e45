"""The listening sockets of a server with workers: bound once by the supervisor, shared by
every worker.

A stream listener (tcp:, ssl:, systemd:) is one listening socket: the supervisor binds it
(or takes it from systemd) and never accepts on it; each worker receives the descriptor
(`childFDs`) and adopts it (`adoptStreamPort`), so the kernel hands each new connection
to whichever worker accepts first. TLS is the worker's: an ssl: listener's descriptor is
plain TCP and the worker wraps its factory in TLS from the same listen value.

The UDP listener is one port with a socket per worker (SO_REUSEPORT): the kernel spreads
datagrams over the workers by source address and port, so one player's datagrams keep
reaching the same worker. The supervisor binds the port first (it resolves `udp:0` and
keeps the port for the workers) and closes its own socket once every worker listens.
"""

from __future__ import annotations

import socket
from typing import Optional

import attrs
from twisted.internet import endpoints, protocol
from twisted.internet.address import IPv4Address, IPv6Address

from gamed.core.endpoints import parse_udp, server_endpoint

FAMILIES = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}


@attrs.frozen
class SharedSocket:
    """One listener as a worker receives it (JSON-able through `attrs.asdict`)."""

    #: the config key it serves
    section: str
    key: str
    #: the listen value of the config ("tcp:5556:interface=...", "udp:5557", ...), with the
    #: port bound when the config said 0
    description: str
    kind: str  # "stream" or "udp"
    family: str  # "INET", "INET6" or "UNIX"
    #: stream: the descriptor number in the worker
    fd: int = -1
    #: udp: the port every worker binds (the supervisor's resolved port)
    port: int = 0

    def stream_endpoint(self, reactor):
        """The endpoint a worker listens on: the inherited socket, in TLS for ssl:."""
        adopted = endpoints.AdoptedStreamServerEndpoint(reactor, self.fd,
                                                        FAMILIES[self.family])
        if self.description.startswith("ssl:"):
            return _TlsOver(adopted, server_endpoint(reactor, self.description))
        return adopted

    def adopt_datagram(self, reactor, datagram_protocol):
        """This worker's own socket on the shared UDP port, listening."""
        sock = bind_udp(self.description, self.port)
        try:
            return reactor.adoptDatagramPort(sock.fileno(), FAMILIES[self.family],
                                             datagram_protocol)
        finally:
            sock.close()  # the port holds its own duplicate


class _TlsOver:
    """An adopted listening socket that speaks TLS (the context from the ssl: value)."""

    def __init__(self, adopted, ssl_endpoint):
        self.adopted = adopted
        self.context = ssl_endpoint._sslContextFactory

    def listen(self, factory):
        from twisted.protocols.tls import TLSMemoryBIOFactory

        return self.adopted.listen(TLSMemoryBIOFactory(self.context, False, factory))


def bind_udp(description: str, port: Optional[int] = None) -> socket.socket:
    """A non-blocking UDP socket on udp:PORT[:interface=ADDR] with SO_REUSEPORT (the port
    given overrides the description's: the supervisor's resolved port 0)."""
    address = parse_udp(description)
    family = socket.AF_INET6 if ":" in address.interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address.interface, address.port if port is None else port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _NeverAccepts(protocol.Factory):
    def buildProtocol(self, addr):  # pragma: no cover - the supervisor never reads
        return None


def listen_stream(reactor, description: str):
    """The supervisor's listening port of one stream listener; it never accepts (not
    read by its reactor): only the workers do."""
    result = []
    server_endpoint(reactor, description).listen(_NeverAccepts()).addBoth(result.append)
    port = result[0]
    if not hasattr(port, "fileno"):
        port.raiseException()  # CannotListenError and friends, synchronously
    port.stopReading()
    return port


def as_bound(description: str, port: int) -> str:
    """The listen value with the port the OS chose when it asked for port 0."""
    parts = description.split(":")
    if parts[0] in ("tcp", "tcp6", "ssl", "udp") and len(parts) > 1 and parts[1] == "0":
        parts[1] = str(port)
    return ":".join(parts)


def family_of(port) -> str:
    host = port.getHost()
    if isinstance(host, IPv6Address):
        return "INET6"
    if isinstance(host, IPv4Address):
        return "INET"
    return "UNIX"
