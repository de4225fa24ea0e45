"""Block Attack's datagram shapes (see docs/blockattack.md): what the server sends."""

from __future__ import annotations

import json
from typing import Optional

from gamed.blockattack.rules import Duel


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def error(code: str, text: Optional[str] = None) -> dict:
    message = {"command": "error", "error": code}
    if text is not None:
        message["message"] = text
    return message


def waiting(opponent: str) -> dict:
    return {"command": "waiting", "opponent": opponent}


def game_start(timestamp: int, game_name: str, duel: Duel, player: str, now: float) -> dict:
    side, other = duel.sides[player], duel.opponent(player)
    piece = duel.next_piece(player)
    return {"timestamp": timestamp, "command": "game_start", "game_name": game_name,
            "self": player, "opponent": other.name,
            "user_blocks": side.board, "opponent_blocks": other.board,
            "next_block": piece.shape, "next_piece": piece.describe(),
            "time_left": round(duel.time_left(now), 3),
            "user_score": side.score, "opponent_score": other.score,
            "powers_available": list(side.powers_available),
            "power_every": duel.power_every}


def game_flux(timestamp: int, game_name: str, duel: Duel, player: str, now: float,
              user_board: bytes, opponent_board: bytes) -> bytes:
    """The reply to a game_flux, as bytes: the two boards come already encoded (each is
    encoded once per report, and every report gets a reply)."""
    side, other = duel.sides[player], duel.opponent(player)
    piece = duel.next_piece(player)
    small = encode({
        "timestamp": timestamp, "command": "game_flux", "game_name": game_name,
        "power_used": None,
        "power_applied": [event.describe() for event in side.incoming.values()],
        "next_block": piece.shape, "next_piece": piece.describe(),
        "time_left": round(duel.time_left(now), 3),
        "user_score": side.score, "opponent_score": other.score,
        "powers_available": side.powers_available})
    return (small[:-1] + b',"user_blocks":' + user_board
            + b',"opponent_blocks":' + opponent_board + b"}")


def game_end(game_name: str, duel: Duel, elo: Optional[dict]) -> dict:
    """Without its timestamp: each copy sent gets a fresh one."""
    return {"command": "game_end", "game_name": game_name, "winner": duel.winner,
            "score": duel.scores(), "reason": duel.reason, "elo": elo}
