"""A reference Block Attack client: the datagrams a game sends and how it reads replies.

`BlockattackClient` holds one player's view and builds/reads datagrams; it does no I/O
(`send` is a function you give it), so the same class drives a real socket
(`BlockattackClientProtocol`, a Twisted DatagramProtocol), the tests' lossy network and the
benchmark. It stamps increasing millisecond timestamps, repeats `connect` until
`game_start` arrives, acknowledges every `power_applied` and `game_end`, applies each power
once however many copies arrive, and ignores stale server datagrams.
"""

from __future__ import annotations

import json
from typing import Callable, Optional

from twisted.internet import protocol, task

from gamed.blockattack.rules import empty_board


class BlockattackClient:
    def __init__(self, name: str, opponent: str, send: Callable[[bytes], None],
                 clock, on_power: Optional[Callable[[dict], None]] = None):
        self.name = name
        self.opponent = opponent
        self._send = send
        self.clock = clock
        self.on_power = on_power
        self.last_sent = 0
        self.last_server_timestamp = 0
        self.game_name: Optional[str] = None
        self.start: Optional[dict] = None
        self.state: Optional[dict] = None  # the newest game_flux reply
        self.end: Optional[dict] = None
        self.powers_seen: dict = {}  # power id -> event (applied once)
        self.board = empty_board()
        self.score = 0
        self.pieces_placed = 0
        self.errors: list = []
        self.forfeited = False

    # -- sending ---------------------------------------------------------------------------

    def timestamp(self) -> int:
        self.last_sent = max(int(self.clock.seconds() * 1000), self.last_sent + 1)
        return self.last_sent

    def send(self, message: dict) -> None:
        self._send(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def connect(self) -> None:
        self.send({"timestamp": self.timestamp(), "command": "connect", "self": self.name,
                   "opponent": self.opponent})

    def flux(self, power_used=None) -> None:
        """Report this player's board, score and pieces (and maybe use a power)."""
        if self.game_name is None:
            return
        self.send({"timestamp": self.timestamp(), "command": "game_flux",
                   "game_name": self.game_name, "user_blocks": self.board,
                   "opponent_blocks": (self.state or self.start or {}).get("opponent_blocks"),
                   "power_used": power_used, "user_score": self.score,
                   "pieces_placed": self.pieces_placed,
                   "powers_available": (self.state or {}).get("powers_available", []),
                   "power_ack": sorted(self.powers_seen)})

    def forfeit(self) -> None:
        """Give up; repeat it (the protocol's tick does) until game_end arrives."""
        self.forfeited = True
        if self.game_name is not None:
            self.send({"timestamp": self.timestamp(), "command": "forfeit",
                       "game_name": self.game_name})

    def ack_end(self) -> None:
        self.send({"timestamp": self.timestamp(), "command": "ack", "ack": "game_end",
                   "game_name": self.game_name})

    # -- receiving --------------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        command = message.get("command")
        if command == "error":
            self.errors.append(message)
            return
        stamp = message.get("timestamp", 0)
        if command == "game_end":
            if self.game_name in (None, message.get("game_name")):
                self.end = message
                self.ack_end()  # every copy is acknowledged: acks get lost too
            return
        if not isinstance(stamp, int) or stamp <= self.last_server_timestamp:
            return  # a late or duplicated server datagram
        self.last_server_timestamp = stamp
        if command == "game_start":
            self.game_name = message["game_name"]
            self.start = message
        elif command == "game_flux":
            self.state = message
            for event in message.get("power_applied") or []:
                if event["id"] not in self.powers_seen:
                    self.powers_seen[event["id"]] = event
                    if self.on_power is not None:
                        self.on_power(event)

    @property
    def next_block(self) -> Optional[str]:
        latest = self.state or self.start
        return latest["next_block"] if latest else None


class BlockattackClientProtocol(protocol.DatagramProtocol):
    """The client on a real UDP socket: connects (repeating until game_start), then
    reports every `interval` seconds until the game ends."""

    def __init__(self, name: str, opponent: str, server: tuple, clock=None,
                 interval: float = 0.1):
        from twisted.internet import reactor

        self.server = server
        self.clock = clock or reactor
        self.client = BlockattackClient(name, opponent, self._write, self.clock)
        self.loop = task.LoopingCall(self._tick)
        self.loop.clock = self.clock
        self.interval = interval

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data, self.server)

    def startProtocol(self):
        self.loop.start(self.interval)

    def stopProtocol(self):
        if self.loop.running:
            self.loop.stop()

    def _tick(self):
        client = self.client
        if client.end is not None:
            return
        if client.game_name is None:
            client.connect()
        elif client.forfeited:
            client.forfeit()
        else:
            client.flux()

    def datagramReceived(self, data, address):
        if address == self.server:
            self.client.received(data)
