"""Test doubles shared by the project's tests (and usable by game developers' own)."""

from __future__ import annotations

import json

from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from gamed.core.channel import ConnectionHandler, encode
from gamed.core.config import set_option


def make_test_config(overrides: dict | None = None):
    """Defaults with bcrypt cost 4; overrides are {(section, key): value}."""
    from gamed.games import GamedConfig  # the whole daemon's config, every game's section

    config = set_option(GamedConfig(), "accounts", "bcrypt_cost", 4)
    for (section, key), value in (overrides or {}).items():
        config = set_option(config, section, key, value)
    return config


class FakeChannel:
    """A Channel that records what the handler sent (decoded), for handler unit tests."""

    transport = "fake"

    def __init__(self, peer: str = "127.0.0.1:40000"):
        self.peer = peer
        self.sent: list = []
        self.texts: list[str] = []
        self.closed = False
        self.close_reason = None
        self.unsent = 0
        self.refused: list[str] = []
        self.handler = None

    def send(self, message: dict) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        if self.closed:
            return
        self.texts.append(text)
        try:
            self.sent.append(json.loads(text[1:] if text.startswith("#") else text))
        except ValueError:
            self.sent.append(text)

    def send_prepared(self, frame) -> None:
        self.send_text(frame.text)

    def close(self, reason: str = "") -> None:
        self.closed = True
        self.close_reason = reason

    def buffered(self) -> int:
        return self.unsent

    def refuse(self, problem) -> None:
        self.refused.append(problem.code)
        self.handler.frame_refused(problem)

    def take(self) -> list:
        """Everything sent since the last take()."""
        sent, self.sent = self.sent, []
        self.texts = []
        return sent


def connect(handler: ConnectionHandler, channel: FakeChannel | None = None) -> FakeChannel:
    channel = channel or FakeChannel()
    channel.handler = handler
    handler.connection_made(channel)
    return channel


class ErrorLog:
    """Records every twisted.logger event at error or critical level (a logged failure,
    an unhandled error in a Deferred) while installed: `with ErrorLog() as errors:`."""

    LEVELS = (LogLevel.error, LogLevel.critical)

    def __init__(self):
        self.events: list = []

    def __call__(self, event: dict) -> None:
        if event.get("log_level") in self.LEVELS:
            self.events.append(event)

    def lines(self) -> list[str]:
        """Each recorded event as text, its traceback included."""
        out = []
        for event in self.events:
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += "\n" + failure.getTraceback()
            out.append(text)
        return out

    def __enter__(self) -> "ErrorLog":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc) -> None:
        globalLogPublisher.removeObserver(self)
