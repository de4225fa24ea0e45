"""The rating chart's geometry (pure)."""

from gamed.web.chart import HEIGHT, WIDTH, nice_step, rating_chart


def test_nice_steps_are_round():
    assert nice_step(40) == 10 and nice_step(37) == 10 and nice_step(9) == 5
    assert nice_step(300) == 100 and nice_step(0) > 0


def test_no_points_no_series():
    chart = rating_chart([])
    assert chart.empty and chart.y_ticks == ()


def test_series_per_game_in_match_order_within_the_plot():
    points = [(1, "uttt", "t", 1010.0), (2, "novaglide", "t", 1020.0),
              (3, "uttt", "t", 990.0), (4, "uttt", "t", 1005.0)]
    chart = rating_chart(points)
    left, top, right, bottom = chart.plot
    by_game = {s.game: s for s in chart.series}
    assert set(by_game) == {"uttt", "novaglide"}
    uttt = by_game["uttt"].points
    assert [round(x) for x, _ in uttt] == [left, round(left + (right - left) * 2 / 3), right]
    assert uttt[1][1] > uttt[2][1] > uttt[0][1]  # SVG y grows downwards: 990 < 1005 < 1010
    ys = [y for s in chart.series for _, y in s.points]
    assert all(top <= y <= bottom for y in ys)
    assert by_game["uttt"].path.startswith("M%.1f," % left) and by_game["uttt"].path.count("L") == 2
    labels = [float(label) for _, label in chart.y_ticks]
    assert labels == sorted(labels) and labels[0] <= 990 and labels[-1] >= 1020
    assert chart.width == WIDTH and chart.height == HEIGHT and by_game["uttt"].last_rating == 1005


def test_a_single_flat_point_sits_inside():
    chart = rating_chart([(1, "uttt", "t", 1000.0)])
    (x, y), = chart.series[0].points
    left, top, right, bottom = chart.plot
    assert x == (left + right) / 2 and top < y < bottom
