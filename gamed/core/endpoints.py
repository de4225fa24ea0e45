"""Listen values from the config: Twisted endpoint strings for streams, udp:PORT for UDP."""

from __future__ import annotations

from typing import Optional

import attrs
from twisted.application import internet, service
from twisted.internet import endpoints


@attrs.frozen
class UdpAddress:
    port: int
    interface: str = ""


def parse_udp(description: str) -> UdpAddress:
    """`udp:PORT[:interface=ADDR]` -> UdpAddress; ValueError names what is wrong."""
    parts = description.split(":")
    if parts[0] != "udp" or len(parts) < 2:
        raise ValueError("expected udp:PORT[:interface=ADDR], got %r" % description)
    try:
        port = int(parts[1])
    except ValueError:
        raise ValueError("bad UDP port %r in %r" % (parts[1], description)) from None
    if not 0 <= port <= 65535:
        raise ValueError("UDP port out of range in %r" % description)
    interface = ""
    rest = ":".join(parts[2:])
    if rest:
        key, _, value = rest.partition("=")
        if key != "interface" or not value:
            raise ValueError("unknown UDP option %r in %r (only interface=ADDR)" % (rest, description))
        interface = value
    return UdpAddress(port, interface)


def check_endpoint(description: str, udp: bool = False) -> None:
    """Raise ValueError when a listen value cannot be used; empty means disabled."""
    if not description:
        return
    if not isinstance(description, str):
        raise ValueError("expected an endpoint string")
    if udp:
        parse_udp(description)
        return
    if description.startswith("systemd:"):
        # the inherited descriptors exist only in the daemon started by systemd: check the
        # syntax here, the descriptor when listening
        options = dict(part.partition("=")[::2] for part in description.split(":")[1:])
        if options.get("domain") not in ("INET", "INET6", "UNIX"):
            raise ValueError("bad endpoint %r: systemd needs domain=INET|INET6|UNIX"
                             % description)
        if not options.get("index", "").isdigit() and not options.get("name"):
            raise ValueError("bad endpoint %r: systemd needs index=N or name=NAME"
                             % description)
        unknown = sorted(set(options) - {"domain", "index", "name"})
        if unknown:
            raise ValueError("bad endpoint %r: systemd takes domain, index or name, not %s"
                             % (description, ", ".join(unknown)))
        return
    from twisted.internet import reactor

    try:
        endpoint = endpoints.serverFromString(reactor, description)
    except ImportError as exc:  # ssl: without pyOpenSSL (pip install 'twisted[tls]')
        raise ValueError("bad endpoint %r: %s (for ssl: install twisted[tls])"
                         % (description, exc)) from None
    except Exception as exc:
        raise ValueError("bad endpoint %r: %s" % (description, exc)) from None
    port = getattr(endpoint, "_port", 0)
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise ValueError("bad endpoint %r: port out of range" % description)


class ListenError(Exception):
    """A listen value that cannot be used in this process (say, a systemd socket that was
    not handed over)."""


#: the listen queue of tcp: and ssl: listeners (Twisted's default is 50): after a restart
#: every player reconnects at once, and connections past a full queue wait for the
#: client's SYN retry (1 s, then 3 s, ...); the kernel caps it at net.core.somaxconn
LISTEN_BACKLOG = 1024


def with_backlog(description: str) -> str:
    """The description with `backlog=LISTEN_BACKLOG` when it is a tcp: or ssl: one that
    does not set its own."""
    if description.split(":", 1)[0] in ("tcp", "tcp6", "ssl") and "backlog=" not in description:
        return "%s:backlog=%d" % (description, LISTEN_BACKLOG)
    return description


def server_endpoint(reactor, description: str):
    """The Twisted server endpoint of a stream listen value (backlog added)."""
    try:
        return endpoints.serverFromString(reactor, with_backlog(description))
    except (IndexError, KeyError):  # index=N past the sockets, or an unknown name=
        raise ListenError("%r: no such socket was handed over (enable gamed.socket and "
                          "start gamed through it, one ListenStream= per systemd: listener)"
                          % description) from None


def stream_service(reactor, description: str, factory,
                   shared: Optional[dict] = None) -> service.IService:
    """A service that listens on a stream endpoint while running; in a worker (`shared`:
    listen value -> `gamed.workers.sockets.SharedSocket`), on the socket its supervisor
    bound."""
    if shared and description in shared:
        endpoint = shared[description].stream_endpoint(reactor)
    else:
        endpoint = server_endpoint(reactor, description)
    listener = internet.StreamServerEndpointService(endpoint, factory)
    # a port that cannot be bound stops start-up instead of being logged and ignored
    listener._raiseSynchronously = True
    return listener


class UdpService(service.Service):
    """Listens a DatagramProtocol on udp:PORT[:interface=ADDR] while running."""

    def __init__(self, reactor, description: str, protocol, shared=None):
        self.reactor = reactor
        self.address = parse_udp(description)
        self.protocol = protocol
        self.port = None
        #: in a worker: the supervisor's `SharedSocket` (its port, bound with SO_REUSEPORT)
        self.shared = shared

    def privilegedStartService(self):
        if self.shared is not None:
            self.port = self.shared.adopt_datagram(self.reactor, self.protocol)
        else:
            self.port = self.reactor.listenUDP(self.address.port, self.protocol,
                                               interface=self.address.interface)
        service.Service.privilegedStartService(self)

    def startService(self):
        if self.port is None:
            self.privilegedStartService()
        service.Service.startService(self)

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
