"""The HTTP listener as a service."""

from __future__ import annotations

from gamed.core.endpoints import stream_service
from gamed.web.resources import make_site


def make_service(core):
    endpoint = core.config.http.listen
    if not endpoint:
        return None
    return stream_service(core.reactor, endpoint, make_site(core))
