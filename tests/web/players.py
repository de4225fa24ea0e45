"""Real players for the browser tests: blocking uttt and novaglide clients over TCP JSON
lines that log in and play whole uttt games against the running daemon."""

from __future__ import annotations

import random

from gamed.uttt import rules
from integration.harness import Lines


class UtttPlayer:
    def __init__(self, port: int, name: str, password: str = "pw"):
        self.lines = Lines(port)
        self.name = name
        self.lines.send({"type": "login", "data": {"name": name, "pw": password}})
        reply = self.wait("login_response")
        assert reply["success"], reply

    def send(self, type_: str, data: dict) -> None:
        self.lines.send({"type": type_, "data": data})

    def wait(self, type_: str, predicate=lambda data: True) -> dict:
        message = self.lines.wait_for(
            lambda m: m.get("type") == type_ and predicate(m.get("data")), limit=2000)
        return message["data"]

    def close(self) -> None:
        self.lines.close()


def play_uttt(a: UtttPlayer, b: UtttPlayer, seed: int) -> dict:
    """A invites B and both play random legal moves to the end; the final match_state."""
    a.send("match_request", {"player": b.name})
    match_id = b.wait("match_update", lambda d: d["match_state"]["last_move"] is None)["id"]
    a.wait("match_update", lambda d: d["id"] == match_id)
    board, chooser = rules.new_board(), random.Random(seed)
    while True:
        mark = board.to_move
        mover = a if mark == rules.MARK_A else b
        move = chooser.choice(list(rules.legal_moves(board)))
        board = rules.play(board, mark, move)
        mover.send("move", {"id": match_id, "sub_x": move.sub_x, "sub_y": move.sub_y,
                            "x": move.x, "y": move.y})
        for player in (a, b):
            state = player.wait("match_update", lambda d: d["id"] == match_id and
                                d["match_state"]["complete_field"] == board.complete_field()
                                )["match_state"]
        if state["game_over"]:
            return state


def novaglide_login(port: int, name: str, password: str = "pw") -> Lines:
    """Registers (or logs in) a novaglide player: any name the core accepts."""
    client = Lines(port)
    client.send({"flag": "log_in_data", "data": [name, password]})
    reply = client.wait_for(lambda m: m.get("flag") == "change_of_status")
    assert reply["data"][0] == "online", reply
    return client
