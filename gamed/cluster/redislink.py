"""Two connections to Redis (commands, and a subscriber for the channels) kept open by
`ClientService`, which reconnects with back-off; `up` only while both work.

Commands fail at once with `RedisDown` while Redis is away: the cluster then keeps its
node's state in memory and writes it all again when the link is back (`on_up`).
"""

from __future__ import annotations

from typing import Callable, Optional

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, endpoints, protocol
from twisted.logger import Logger

from gamed.cluster.interface import ClusterUnavailable
from gamed.cluster.settings import RedisUrl

log = Logger(namespace="gamed.cluster.redis")


class RedisDown(ClusterUnavailable):
    """Redis cannot be reached right now."""


class _Factory(protocol.Factory):
    """What txredisapi's protocols expect of their factory, without its pool."""

    isLazy = False
    noisy = False

    def __init__(self, protocol_class, url: RedisUrl, reply_timeout: float, select: bool):
        self.protocol_class = protocol_class
        self.url = url
        self.reply_timeout = reply_timeout
        self.select = select
        self.problem: Optional[str] = None

    def buildProtocol(self, addr):
        proto = self.protocol_class(charset="utf-8", replyTimeout=self.reply_timeout,
                                    password=self.url.password,
                                    dbid=self.url.db if self.select else None,
                                    convertNumbers=False)
        proto.factory = self
        return proto

    def stopTrying(self):  # txredisapi calls it when AUTH or SELECT is refused
        pass

    def connectionError(self, why):
        self.problem = why
        log.error("{why}", why=why)


class _Subscriber(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern, channel, message):
        self.factory.on_message(channel, message)


class RedisLink:
    def __init__(self, reactor, url: RedisUrl, channels: list[str],
                 on_message: Callable[[str, str], None], on_up: Callable[[], None],
                 on_down: Callable[[str], None], reply_timeout: float = 5.0):
        self.reactor = reactor
        self.url = url
        self.channels = channels
        self.on_up = on_up
        self.on_down = on_down
        self.command: Optional[txredisapi.RedisProtocol] = None
        self.subscriber: Optional[_Subscriber] = None
        self.up = False
        self.problem = "not connected yet"
        endpoint = endpoints.HostnameEndpoint(reactor, url.host, url.port,
                                              timeout=max(1, int(reply_timeout)))
        retry = backoffPolicy(initialDelay=0.2, maxDelay=2.0, factor=2.0)
        self._command_factory = _Factory(txredisapi.RedisProtocol, url, reply_timeout, True)
        self._subscriber_factory = _Factory(_Subscriber, url, reply_timeout, False)
        self._subscriber_factory.on_message = on_message
        self._services = [
            ClientService(endpoint, self._command_factory, retryPolicy=retry,
                          prepareConnection=self._command_made, clock=reactor),
            ClientService(endpoint, self._subscriber_factory, retryPolicy=retry,
                          prepareConnection=self._subscriber_made, clock=reactor),
        ]

    def start(self) -> None:
        for svc in self._services:
            svc.startService()

    def stop(self) -> defer.Deferred:
        self.up = False
        return defer.gatherResults([svc.stopService() for svc in self._services],
                                   consumeErrors=True)

    def call(self, *args) -> defer.Deferred:
        """Run one command; fails with RedisDown while the link is down."""
        if self.command is None or not self.up:
            return defer.fail(RedisDown(self.problem))
        try:
            return self.command.execute_command(*args)
        except txredisapi.ConnectionError as exc:
            return defer.fail(RedisDown(str(exc)))

    # -- connection states ---------------------------------------------------------------

    def _command_made(self, proto) -> defer.Deferred:
        ready = proto.whenConnected()

        def usable(_):
            self.command = proto
            proto.whenDisconnected().addCallback(self._lost, "commands")
            self._maybe_up()

        return ready.addCallback(usable)

    def _subscriber_made(self, proto) -> defer.Deferred:
        ready = proto.whenConnected()

        def usable(_):
            proto.whenDisconnected().addCallback(self._lost, "channels")
            return proto.subscribe(self.channels).addCallback(subscribed, proto)

        def subscribed(_, proto):
            self.subscriber = proto
            self._maybe_up()

        return ready.addCallback(usable)

    def _maybe_up(self) -> None:
        if self.up or self.command is None or self.subscriber is None:
            return
        if not (self.command.connected and self.subscriber.connected):
            return
        self.up = True
        self.problem = None
        log.info("redis: connected to {url}", url=self.url.describe())
        self.on_up()

    def _lost(self, proto, which: str) -> None:
        if proto is self.command:
            self.command = None
            # the subscriber may not notice a hung server: start both again together
            if self.subscriber is not None and self.subscriber.transport is not None:
                self.subscriber.transport.loseConnection()
        if proto is self.subscriber:
            self.subscriber = None
            if self.command is not None and self.command.transport is not None:
                self.command.transport.loseConnection()
        if self.up:
            self.up = False
            self.problem = "redis %s: connection lost (%s)" % (self.url.describe(), which)
            log.warn("redis: connection lost; reconnecting")
            self.on_down(self.problem)
        elif self.problem is None or self.problem == "not connected yet":
            self.problem = "redis %s: not connected" % self.url.describe()
