"""/play/uttt: the project's own browser client for uttt (static/uttt.js), speaking the
uttt WebSocket protocol (docs/uttt.md) to the uttt service, so a visitor can try gamed
with nothing installed."""

from __future__ import annotations

from typing import Optional

from gamed.web.render import Html, Page, PageError


def websocket_port(endpoint: str) -> Optional[int]:
    """The port of a tcp:/ssl: endpoint description ('tcp:5556:interface=...'), or None."""
    parts = endpoint.split(":")
    if len(parts) < 2 or parts[0] not in ("tcp", "ssl"):
        return None
    value = parts[1]
    if value.startswith("port="):
        value = value[len("port="):]
    return int(value) if value.isdigit() else None


class PlayUttt(Page):
    async def page(self, request, *path):
        if path != ("uttt",):
            raise PageError(404, "Nothing to play here", "Try /play/uttt.")
        config = self.core.config
        url = config.http.play_websocket_url
        port = websocket_port(config.uttt.websocket) if not url else None
        if not url and port is None:
            raise PageError(404, "uttt is not served over WebSocket here",
                            "The operator has not enabled [uttt] websocket.")
        return Html("play.html", {"websocket_url": url, "websocket_port": port or ""})
