"""The match rows of a player page as HTML, built here rather than in the template: they
are the page's hot loop (20 rows of about a dozen values: 85% of the page's rendering
time in Jinja, where every value goes through a filter and autoescaping). Every text
that comes from the database is escaped here; numbers are formatted, not escaped.
"""

from __future__ import annotations

from markupsafe import Markup

from gamed.web.render import GAME_TITLES, player_href, rating, score, signed, when

#: what autoescaping replaces (markupsafe's table), as one str.translate: a plain str
#: in one C call, where markupsafe.escape makes a Markup object per value
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;",
                          "'": "&#39;"})


def escape(text) -> str:
    return str(text).translate(_ESCAPES)


def history_rows(history) -> Markup:
    """`<tr>` rows for [MatchSummary] (gamed.store.ratings), newest first."""
    rows = []
    for m in history:
        # player_href quotes every character but letters, digits and -._~: nothing in
        # it to escape
        opponents = ", ".join('<a class="player" href="%s">%s</a>'
                              % (player_href(name), escape(name)) for name in m.opponents)
        scores = score(m.score) + "".join(" – " + score(s) for s in m.opponent_scores)
        reason = escape(m.reason)
        if not m.ranked:
            reason += ' <span class="muted">(unranked)</span>'
        change = ""
        if m.ranked and m.rating_after is not None:
            change = rating(m.rating_after)
            if m.rating_before is not None:
                change += ' <span class="delta">(%s)</span>' % signed(
                    m.rating_after - m.rating_before)
        outcome = escape(m.outcome)
        rows.append(
            '<tr>\n'
            '<td><a href="/matches/%d">#%d</a></td>\n'
            '<td>%s</td>\n'
            '<td>%s</td>\n'
            '<td><span class="outcome %s">%s</span></td>\n'
            '<td class="num">%s</td>\n'
            '<td>%s</td>\n'
            '<td class="num">%s</td>\n'
            '<td class="muted">%s</td>\n'
            '</tr>\n'
            % (m.match_id, m.match_id, escape(GAME_TITLES.get(m.game, m.game)), opponents,
               outcome, outcome, scores, reason, change, escape(when(m.ended_at))))
    return Markup("".join(rows))
