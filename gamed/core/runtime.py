"""Core: everything a game service is given (clock, config, stores, accounts, listeners)."""

from __future__ import annotations

import random
from typing import Any, Optional

import attrs
from twisted.application import service

from gamed.cluster.interface import Cluster, Presence
from gamed.cluster.local import LocalCluster
from gamed.core.accounts import AccountService
from gamed.core.channel import HandlerFactory
from gamed.core.endpoints import UdpService, stream_service
from gamed.core.lines import JsonLinesFactory
from gamed.core.live import Live
from gamed.core.metrics import Metrics
from gamed.core.settings import StreamLimits
from gamed.core.transport import StreamEndpoint
from gamed.core.websocket import websocket_factory
from gamed.store.accounts import AccountStore, SessionStore
from gamed.store.database import Database
from gamed.store.friends import FriendStore
from gamed.store.ratings import RatingStore


@attrs.define
class Core:
    reactor: object
    config: Any  # gamed.games.GamedConfig: the core sections and one per game
    database: Database
    accounts: AccountService
    ratings: RatingStore
    friends: FriendStore
    metrics: Metrics
    presence: Presence  # cluster.presence
    random: random.Random
    #: the nodes acting as one (presence, match queues, bus); LocalCluster alone
    cluster: Cluster = attrs.Factory(LocalCluster)
    #: stream endpoints by (service, transport), for tests and the drain
    endpoints: dict = attrs.Factory(dict)
    #: what each game runs now (matches, connections by account): web pages, /admin
    live: Live = attrs.Factory(Live)
    #: in a worker: listen value -> the supervisor's SharedSocket (gamed/workers)
    shared_sockets: dict = attrs.Factory(dict)
    #: in a worker: the node names of every worker of this server (its own included)
    workers: tuple = ()
    #: in a worker: hands client connections to the other workers (gamed/workers/handoff.py)
    handoff: Any = None

    def stream_listeners(self, service_name: str, endpoint: str,
                         handler_factory: HandlerFactory, limits: StreamLimits,
                         websocket: bool = False) -> Optional[service.IService]:
        """A listening service for one stream endpoint (None when the value is empty)."""
        if websocket:
            return self.stream_listener(service_name, "websocket", endpoint, handler_factory,
                                        limits, websocket_factory)
        return self.stream_listener(service_name, "lines", endpoint, handler_factory, limits,
                                    JsonLinesFactory)

    def stream_listener(self, service_name: str, transport: str, endpoint: str,
                        handler_factory: HandlerFactory, limits: StreamLimits,
                        protocol_factory) -> Optional[service.IService]:
        """A listening service for one stream endpoint of any wire: `protocol_factory`
        builds the Twisted factory from the listener's `StreamEndpoint` (None when the
        endpoint value is empty)."""
        if not endpoint:
            return None
        shared = StreamEndpoint(service_name, transport, handler_factory, limits, self.reactor,
                                self.metrics.service(service_name))
        self.endpoints[(service_name, transport)] = shared
        return stream_service(self.reactor, endpoint, protocol_factory(shared),
                              self.shared_sockets)

    def udp_listener(self, service_name: str, endpoint: str,
                     protocol) -> Optional[service.IService]:
        if not endpoint:
            return None
        return UdpService(self.reactor, endpoint, protocol, self.shared_sockets.get(endpoint))


def build_core(reactor, config, database: Database, metrics: Metrics,
               rng: Optional[random.Random] = None,
               cluster: Optional[Cluster] = None) -> Core:
    now = reactor.seconds
    accounts = AccountService(reactor, config.accounts, AccountStore(database),
                              SessionStore(database), metrics)
    cluster = cluster if cluster is not None else LocalCluster()
    presence = cluster.presence
    accounts.guest_holds.append(presence.is_online)  # a guest playing anywhere keeps its name
    return Core(reactor=reactor, config=config, database=database, accounts=accounts,
                ratings=RatingStore(database, now), friends=FriendStore(database, now),
                metrics=metrics, presence=presence, random=rng or random.Random(),
                cluster=cluster)
