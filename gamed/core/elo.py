"""Elo ratings (pure): expected score and the two new ratings after a game."""

from __future__ import annotations

DEFAULT_RATING = 1000.0


def expected_score(rating: float, opponent: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def elo_changes(rating_a: float, rating_b: float, score_a: float,
                k_factor: float) -> tuple[float, float]:
    """New (a, b) ratings; score_a is 1 for a win of a, 0.5 for a draw, 0 for a loss."""
    change = k_factor * (score_a - expected_score(rating_a, rating_b))
    return rating_a + change, rating_b - change
