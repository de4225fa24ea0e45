"""A player page's match rows built in Python (gamed/web/rows.py) say what the template
loop they replaced said, escaped the same way, for hostile names and reasons too."""

import re

from hypothesis import given
from hypothesis import strategies as st

from gamed.store.ratings import MatchSummary
from gamed.web.render import make_environment
from gamed.web.rows import history_rows

# the loop player.html had before the rows moved to Python: the reference
TEMPLATE_LOOP = """{% for m in history %}
      <tr>
        <td><a href="/matches/{{ m.match_id }}">#{{ m.match_id }}</a></td>
        <td>{{ game_titles.get(m.game, m.game) }}</td>
        <td>{% for o in m.opponents %}<a class="player" href="{{ o|player_href }}">{{ o }}</a>{% if not loop.last %}, {% endif %}{% endfor %}</td>
        <td><span class="outcome {{ m.outcome }}">{{ m.outcome }}</span></td>
        <td class="num">{{ m.score|score }}{% for s in m.opponent_scores %} – {{ s|score }}{% endfor %}</td>
        <td>{{ m.reason }}{% if not m.ranked %} <span class="muted">(unranked)</span>{% endif %}</td>
        <td class="num">{% if m.ranked and m.rating_after is not none %}{{ m.rating_after|rating }} <span class="delta">({{ (m.rating_after - m.rating_before)|signed }})</span>{% endif %}</td>
        <td class="muted">{{ m.ended_at|when }}</td>
      </tr>
{% endfor %}"""

EVIL = '<script>alert("x")</script>&\'/?#'


def summary(**changes):
    values = dict(match_id=7, game="uttt", ended_at="2026-12-02T17:00:00+00:00",
                  reason="won", ranked=True, outcome="win", score=1.0,
                  opponents=("bob",), opponent_scores=(0.0,), rating_before=1000.0,
                  rating_after=1010.0, details={})
    values.update(changes)
    return MatchSummary(**values)


def normal(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", str(html))).strip()


def reference(history) -> str:
    return make_environment().from_string(TEMPLATE_LOOP).render(history=history)


def test_rows_escape_names_reasons_and_games():
    history = [summary(opponents=(EVIL, "b/o?b#"), opponent_scores=(2.0, 3.5), reason=EVIL),
               summary(match_id=8, game=EVIL, ranked=False, outcome="draw",
                       rating_before=None, rating_after=None, ended_at=EVIL)]
    html = str(history_rows(history))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="/players/b%2Fo%3Fb%23"' in html and "(unranked)" in html
    assert normal(html) == normal(reference(history))


@given(st.lists(st.builds(
    summary, match_id=st.integers(1, 10 ** 12), game=st.sampled_from(
        ["uttt", "novaglide", "rooms", "blockattack", "<b>"]),
    reason=st.text(max_size=20), ranked=st.booleans(),
    outcome=st.sampled_from(["win", "loss", "draw"]),
    score=st.floats(-1e6, 1e6, allow_nan=False),
    opponents=st.lists(st.text(min_size=1, max_size=12), max_size=3).map(tuple),
    opponent_scores=st.lists(st.floats(0, 100), max_size=3).map(tuple),
    rating_before=st.floats(0, 3000), rating_after=st.none() | st.floats(0, 3000),
    ended_at=st.text(max_size=30)), max_size=4))
def test_rows_match_the_template_they_replaced(history):
    assert normal(history_rows(history)) == normal(reference(history))
