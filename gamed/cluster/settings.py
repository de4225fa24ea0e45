"""The [cluster] config section and the Redis URL it names."""

from __future__ import annotations

import socket
from typing import Optional
from urllib.parse import unquote, urlsplit

import attrs


@attrs.define
class ClusterSettings:
    #: redis://[:PASSWORD@]HOST[:PORT][/DB]: where the nodes of one cluster meet (presence,
    #: queues, messages between nodes); empty = this node alone, no Redis (needs a
    #: postgresql:// database when set)
    redis_url: str = ""
    #: this node's name, unique in the cluster; empty = host name and HTTP port
    node_name: str = ""
    #: prefix of every Redis key and channel (clusters or test runs sharing one Redis)
    key_prefix: str = "gamed:"
    #: seconds between a node's heartbeats in Redis
    heartbeat: float = 1.0
    #: seconds without a heartbeat after which a node counts as dead and its players are
    #: forgotten (more than heartbeat); also how long a Redis reply may take
    timeout: float = 5.0


@attrs.frozen
class RedisUrl:
    host: str
    port: int = 6379
    db: int = 0
    password: Optional[str] = None

    def describe(self) -> str:
        return "redis://%s:%d/%d" % (self.host, self.port, self.db)


def parse_redis_url(url: str) -> RedisUrl:
    """redis://[:PASSWORD@]HOST[:PORT][/DB]; ValueError with a one-line reason."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError("must start with redis://")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("port must be a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError("the database must be a number (redis://HOST:PORT/DB)")
    if parts.query or parts.fragment:
        raise ValueError("takes no query or fragment")
    password = unquote(parts.password) if parts.password is not None else None
    return RedisUrl(parts.hostname, port, int(path or 0), password)


def default_node_name(http_listen: str) -> str:
    """Host name and HTTP port ("web1:8080"), the port read from the endpoint string."""
    port = ""
    for piece in http_listen.split(":")[1:]:
        if piece.isdigit():
            port = piece
            break
    host = socket.gethostname()
    return "%s:%s" % (host, port) if port else host
