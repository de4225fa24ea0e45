"""Listen values: tcp: and ssl: listeners get a listen queue fit for a reconnect storm."""

import pytest
from twisted.internet import endpoints, reactor

from gamed.core.endpoints import LISTEN_BACKLOG, with_backlog


@pytest.mark.parametrize("description, backlog", [
    ("tcp:5555", LISTEN_BACKLOG),
    ("tcp:5555:interface=127.0.0.1", LISTEN_BACKLOG),
    ("tcp:0:backlog=7", 7),  # the operator's own value wins
])
def test_stream_listeners_get_a_long_listen_queue_unless_they_set_one(description, backlog):
    assert endpoints.serverFromString(reactor, with_backlog(description))._backlog == backlog


def test_systemd_sockets_are_left_as_systemd_made_them():
    assert with_backlog("systemd:domain=INET:index=0") == "systemd:domain=INET:index=0"
