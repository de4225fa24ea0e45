"""The public pages: the games with their leaderboards, players, matches, live counts.

GET /                          the four games: top players, live counts, newest matches
GET /leaderboard/{game}?page=&player=   a game's leaderboard, 25 a page (player: its page)
GET /players?name=             -> /players/{name}
GET /players/{name}?before=    ratings, rating chart, matches (paged), online status
GET /matches/{id}              players, result, rating changes; uttt's final board
GET /api/live                  {games: {game: {online, matches}}} (polled by live.js)
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from gamed.uttt import rules
from gamed.web.api import GAMES
from gamed.web.chart import rating_chart
from gamed.web.render import Html, Page, PageError, Redirect, int_query, query_arg
from gamed.web.resources import JsonEndpoint
from gamed.web.rows import history_rows

PAGE_SIZE = 25
HISTORY_SIZE = 20
CHART_POINTS = 200


def player_url(name: str) -> str:
    return "/players/" + quote(name, safe="")


def live_counts(core) -> dict:
    return {game: {"online": core.presence.count(game), "matches": core.live.count(game)}
            for game in GAMES}


class Home(Page):
    cache_seconds = 1.0  # the live counts in it are refreshed by live.js anyway

    async def page(self, request, *path):
        if path:
            raise PageError(404, "Page not found")
        boards, counts, recent = await self.reads.ratings.front_page(GAMES)
        return Html("home.html", {"games": GAMES, "boards": boards, "counts": counts,
                                  "recent": recent, "live": live_counts(self.core)})


class Leaderboard(Page):
    async def page(self, request, *path):
        if len(path) != 1 or path[0] not in GAMES:
            raise PageError(404, "No such game",
                            "The games are %s." % ", ".join(GAMES))
        game = path[0]
        ratings = self.reads.ratings
        wanted = query_arg(request, "player")
        highlight = None
        if wanted is not None:
            account = await self.reads.find_account(wanted)
            rank = await ratings.rank(account.id, game) if account is not None else None
            if rank is None:
                raise PageError(404, "Not on this leaderboard",
                                "%s has no %s rating." % (wanted, game))
            page = (rank - 1) // PAGE_SIZE + 1
            highlight = account.id
        else:
            page = int_query(request, "page", 1, 1, 10 ** 7)
        total = await ratings.players_count(game)
        pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
        if page > pages:
            raise PageError(404, "No such page", "The leaderboard has %d page%s."
                            % (pages, "" if pages == 1 else "s"))
        rows = await ratings.leaderboard(game, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        return Html("leaderboard.html", {
            "game": game, "rows": rows, "page": page, "pages": pages, "total": total,
            "highlight": highlight, "live": live_counts(self.core)})


class PlayerSearch(Page):
    """/players?name= (the search form) and /players/{name}."""

    cache_seconds = 1.0

    async def page(self, request, *path):
        if not path:
            name = query_arg(request, "name")
            if name is None:
                raise PageError(404, "No player named", "Give a name to look for.")
            return Redirect(player_url(name.strip()))
        if len(path) != 1:
            raise PageError(404, "Page not found")
        core = self.core
        before = int_query(request, "before", 0, 0, 2 ** 62) or None
        found = await self.reads.player_page(path[0], HISTORY_SIZE + 1, before, CHART_POINTS)
        if found is None:
            raise PageError(404, "No such player", "Nobody is called %s." % path[0])
        account, ratings, history, points = found
        more = len(history) > HISTORY_SIZE
        history = history[:HISTORY_SIZE]
        older = None
        if more:
            older = "%s?%s" % (player_url(account.name),
                               urlencode({"before": history[-1].match_id}))
        return Html("player.html", {
            "account": account, "ratings": ratings, "history": history,
            "history_rows": history_rows(history), "older": older,
            "chart": rating_chart(points), "online": core.presence.is_online(account.id),
            "playing": core.presence.games_of(account.id), "newest": before is not None})


class MatchPage(Page):
    async def page(self, request, *path):
        if len(path) != 1 or not path[0].isdigit() or len(path[0]) > 18:
            raise PageError(404, "No such match")
        match = await self.reads.ratings.match(int(path[0]))
        if match is None:
            raise PageError(404, "No such match", "No match %s was recorded." % path[0])
        board = None
        uttt_id = match["details"].get("uttt_match") if match["game"] == "uttt" else None
        if isinstance(uttt_id, int):
            board = await uttt_board(self.reads.uttt, uttt_id)
        return Html("match.html", {"match": match, "board": board})


async def uttt_board(store, uttt_id: int):
    """The final position of a uttt match as rows for the template, or None."""
    stored = await store.get_match(uttt_id)
    if stored is None:
        return None
    board = rules.decode_board(stored.board, stored.last_move)
    last = board.last_move.index if board.last_move else None
    # sub-boards in reading order, each 3 rows of (mark, is_last)
    subs = []
    for sub in range(9):
        cells = rules.sub_board_cells(sub)
        subs.append({"state": board.global_cells[sub],
                     "rows": [[(board.cells[i], i == last) for i in cells[r * 3:r * 3 + 3]]
                              for r in range(3)]})
    return {"subs": subs, "player_a": stored.name_a, "player_b": stored.name_b}


class LiveCounts(JsonEndpoint):
    async def answer(self, request, *path):
        return {"games": live_counts(self.core)}
