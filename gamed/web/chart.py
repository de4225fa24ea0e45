"""The rating-over-time chart of a player page, computed as inline SVG geometry (pure:
no I/O). One line per game over the player's ranked matches in order, a y axis of
round ratings."""

from __future__ import annotations

import math

import attrs

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 10, 24


@attrs.frozen
class Series:
    game: str
    points: tuple  # ((x, y), ...) in SVG coordinates
    last_rating: float

    @property
    def path(self) -> str:
        return " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", x, y)
                        for i, (x, y) in enumerate(self.points))


@attrs.frozen
class Chart:
    width: int
    height: int
    series: tuple
    y_ticks: tuple  # ((y, label), ...)
    x_label: str
    plot: tuple  # (left, top, right, bottom) of the plotting area

    @property
    def empty(self) -> bool:
        return not self.series


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 5 times a power of ten) that cuts span in about `ticks`."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def rating_chart(points, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """points: [(match_id, game, ended_at, rating_after)] oldest first (every game)."""
    left, top, right, bottom = LEFT, TOP, width - RIGHT, height - BOTTOM
    if not points:
        return Chart(width, height, (), (), "", (left, top, right, bottom))
    ratings = [p[3] for p in points]
    low, high = min(ratings), max(ratings)
    if high - low < 20:  # a flat line sits mid-chart, not on an edge
        low, high = low - 10, high + 10
    step = nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    count = len(points)

    def x_of(index: int) -> float:
        return left + (right - left) * (index / (count - 1) if count > 1 else 0.5)

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * (value - low) / (high - low)

    by_game: dict = {}
    for index, (_, game, _, value) in enumerate(points):
        by_game.setdefault(game, []).append((x_of(index), y_of(value), value))
    series = tuple(Series(game, tuple((x, y) for x, y, _ in rows), rows[-1][2])
                   for game, rows in sorted(by_game.items()))
    ticks = []
    value = low
    while value <= high + step / 2:
        ticks.append((y_of(value), "%g" % value))
        value += step
    label = "last %d ranked match%s" % (count, "" if count == 1 else "es")
    return Chart(width, height, series, tuple(ticks), label, (left, top, right, bottom))
