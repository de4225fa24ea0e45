"""Blocking clients of the four games, as their real clients behave on the wire.

Used by the whole-daemon tests (crash, outage, hostile input) and by the bench scripts;
each speaks one protocol over a plain socket and waits with a timeout, never a sleep.
"""

from __future__ import annotations

import itertools
import json
import socket
import time

from .harness import Lines

EMPTY_WELL = [[0] * 10 for _ in range(20)]


class WebSocketJson:
    """A JSON-per-text-frame WebSocket client (websocket-client)."""

    def __init__(self, port: int, timeout: float = 10.0):
        import websocket

        self.ws = websocket.create_connection("ws://127.0.0.1:%d/" % port, timeout=timeout)

    def send(self, message) -> None:
        self.ws.send(json.dumps(message))

    def recv(self):
        return json.loads(self.ws.recv())

    def close(self) -> None:
        self.ws.close()


class Uttt:
    """uttt over WebSocket: `{"type", "data"}` frames; replies not waited for are kept."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.conn = WebSocketJson(port, timeout)
        self.pending: list = []

    def send(self, type_, data=None) -> None:
        self.conn.send({"type": type_, "data": data if data is not None else {}})

    def wait(self, type_, pred=lambda data: True, limit: int = 500):
        for index, message in enumerate(self.pending):
            if message["type"] == type_ and pred(message["data"]):
                return self.pending.pop(index)["data"]
        for _ in range(limit):
            message = self.conn.recv()
            if message["type"] == type_ and pred(message["data"]):
                return message["data"]
            self.pending.append(message)
        raise AssertionError("no %s among %s" % (type_, self.pending[-5:]))

    def login(self, name: str, pw: str):
        self.send("login", {"name": name, "pw": pw})
        return self.wait("login_response")

    def close(self) -> None:
        self.conn.close()


def uttt_move(client: Uttt, match_id, move) -> dict:
    """Play (sub_x, sub_y, x, y) and return the match_update that acknowledges it."""
    client.send("move", dict(zip(("sub_x", "sub_y", "x", "y"), move), id=match_id))
    return client.wait("match_update", lambda d: d["id"] == match_id
                       and (d["match_state"].get("last_move") or {}) ==
                       dict(zip(("sub_x", "sub_y", "x", "y"), move)))


class Nova(Lines):
    """novaglide over JSON lines."""

    def request(self, flag, data=("no_data",)) -> None:
        self.send({"time": "2026-12-02T10:00:00", "sender": "unknown", "flag": flag,
                   "data": list(data)})

    def login(self, name: str, pw: str):
        self.request("log_in_data", [name, pw])
        return self.wait_for(lambda m: m.get("flag") in ("change_of_status", "error"))

    def flag(self, flag: str, limit: int = 5000):
        return self.wait_for(lambda m: m.get("flag") == flag, limit)


class Block:
    """A blockattack player over UDP with strictly increasing timestamps."""

    def __init__(self, port: int, name: str, opponent: str, timeout: float = 5.0):
        self.port, self.name, self.opponent = port, name, opponent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.game_name = None
        self.last_stamp = 0

    def stamp(self) -> int:
        """Milliseconds since the epoch, strictly increasing for this player (two
        datagrams in one millisecond must not look like a replay)."""
        self.last_stamp = max(self.last_stamp + 1, int(time.time() * 1000))
        return self.last_stamp

    def send(self, message) -> None:
        self.sock.sendto(json.dumps(dict(message, timestamp=self.stamp())).encode(),
                         ("127.0.0.1", self.port))

    def recv(self):
        return json.loads(self.sock.recv(65536))

    def wait(self, pred, limit: int = 200, resend=None):
        """The first datagram matching pred; `resend` is sent again on each timeout
        (UDP loses packets; the protocol says to repeat)."""
        for _ in range(limit):
            try:
                message = self.recv()
            except socket.timeout:
                if resend is None:
                    raise
                resend()
                continue
            if pred(message):
                return message
        raise AssertionError("no matching datagram")

    def connect(self) -> None:
        self.send({"command": "connect", "self": self.name, "opponent": self.opponent})

    def start(self) -> dict:
        start = self.wait(lambda m: m.get("command") == "game_start", resend=self.connect)
        self.game_name = start["game_name"]
        return start

    def flux(self, score: int = 0, pieces: int = 0) -> None:
        self.send({"command": "game_flux", "game_name": self.game_name,
                   "user_blocks": EMPTY_WELL, "opponent_blocks": None, "user_score": score,
                   "pieces_placed": pieces, "power_used": None, "powers_available": [],
                   "power_ack": []})

    def forfeit(self) -> None:
        self.send({"command": "forfeit", "game_name": self.game_name})

    def ack_end(self) -> None:
        self.send({"command": "ack", "ack": "game_end", "game_name": self.game_name})

    def close(self) -> None:
        self.sock.close()


def start_pair(one: Block, two: Block, seconds: float = 30.0) -> None:
    """Both connect, repeating it (the protocol says to) until both have game_start: a
    name still held by its last game is refused (name_in_game) until that game is
    forgotten, and each must repeat its connect for the two to be paired then."""
    deadline = time.monotonic() + seconds
    pending = [one, two]
    for player in pending:
        player.connect()
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError("no game_start for %s" % [p.name for p in pending])
        for player in list(pending):
            player.sock.settimeout(0.25)
            try:
                message = player.recv()
            except socket.timeout:
                player.connect()
                continue
            finally:
                player.sock.settimeout(5.0)
            if message.get("command") == "game_start":
                player.game_name = message["game_name"]
                pending.remove(player)


class Rooms:
    """rooms over WebSocket or JSON lines; numbered requests like the real client."""

    def __init__(self, port: int, websocket: bool = True, timeout: float = 10.0):
        self.conn = WebSocketJson(port, timeout) if websocket else Lines(port, timeout)
        self.ids = itertools.count()
        self.pending: list = []

    def request(self, type_, **fields) -> int:
        number = next(self.ids)
        self.conn.send(dict({"id": number, "type": type_}, **fields))
        return number

    def wait(self, pred, limit: int = 500):
        for index, message in enumerate(self.pending):
            if pred(message):
                return self.pending.pop(index)
        for _ in range(limit):
            message = self.conn.recv()
            if pred(message):
                return message
            self.pending.append(message)
        raise AssertionError("no matching rooms message")

    def call(self, type_, **fields) -> dict:
        number = self.request(type_, **fields)
        return self.wait(lambda m: m.get("requestId") == number or
                         m.get("originId") == number)

    def login(self, name: str) -> dict:
        return self.call("login", details={"username": name, "avatar": 1, "color": 0,
                                           "border_color": 0})

    def close(self) -> None:
        self.conn.close()
