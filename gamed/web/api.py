"""The read-only JSON API for websites: leaderboards, players, matches.

GET /api/leaderboard/{game}?limit=&offset=
GET /api/players/{name}
GET /api/matches?player=&game=&limit=&before=      (newest first; `next` pages on)
Errors are JSON {"error", "message"} with 400 (bad parameter) or 404 (unknown game/player).
"""

from __future__ import annotations

from urllib.parse import urlencode

from twisted.web import resource

from gamed.web.resources import ApiError, JsonEndpoint, NotFound

GAMES = ("novaglide", "blockattack", "uttt", "rooms")
MAX_LIMIT = 100


def int_arg(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name.encode(), [None])[0]
    if raw is None or raw == b"":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", "%s must be an integer" % name) from None
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", "%s must be between %d and %d" % (name, low, high))
    return value


def str_arg(request, name: str):
    raw = request.args.get(name.encode(), [None])[0]
    if raw is None or raw == b"":
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_parameter", "%s is not UTF-8" % name) from None


def check_game(game: str) -> str:
    if game not in GAMES:
        raise ApiError(404, "unknown_game", "no game %r (games: %s)" % (game, ", ".join(GAMES)))
    return game


class Leaderboard(JsonEndpoint):
    async def answer(self, request, *path):
        if len(path) != 1:
            raise ApiError(404, "not_found", "use /api/leaderboard/{game}")
        game = check_game(path[0])
        limit = int_arg(request, "limit", 20, 1, MAX_LIMIT)
        offset = int_arg(request, "offset", 0, 0, 10 ** 9)
        rows = await self.core.ratings.leaderboard(game, limit + 1, offset)
        more = len(rows) > limit
        return {
            "game": game,
            "players": [{"rank": r.rank, "name": r.name, "rating": round(r.rating, 2),
                         "wins": r.wins, "losses": r.losses, "draws": r.draws}
                        for r in rows[:limit]],
            "next": "/api/leaderboard/%s?limit=%d&offset=%d" % (game, limit, offset + limit)
            if more else None,
        }


class Players(JsonEndpoint):
    async def answer(self, request, *path):
        if len(path) != 1:
            raise ApiError(404, "not_found", "use /api/players/{name}")
        account = await self.core.accounts.find_account(path[0])
        if account is None:
            raise ApiError(404, "unknown_player", "no player %r" % path[0])
        games = {}
        for rating in await self.core.ratings.ratings_of(account.id):
            games[rating.game] = {
                "rating": round(rating.rating, 2), "wins": rating.wins,
                "losses": rating.losses, "draws": rating.draws,
                "rank": await self.core.ratings.rank(account.id, rating.game)}
        presence = self.core.presence
        answer = {"name": account.name, "guest": account.is_guest,
                  "online": presence.is_online(account.id),
                  "playing": presence.games_of(account.id), "games": games}
        if self.core.cluster.clustered:  # the nodes (or workers) it is connected to
            nodes = {node for game in answer["playing"]
                     for node in presence.nodes_of(account.id, game)}
            if presence.here(account.id):
                nodes.add(self.core.cluster.node)
            answer["nodes"] = sorted(nodes)
        return answer


class Matches(JsonEndpoint):
    async def answer(self, request, *path):
        if path:
            raise ApiError(404, "not_found", "use /api/matches?player=&game=&limit=&before=")
        limit = int_arg(request, "limit", 20, 1, MAX_LIMIT)
        before = int_arg(request, "before", 0, 0, 2 ** 62) or None
        game = str_arg(request, "game")
        if game is not None:
            check_game(game)
        player = str_arg(request, "player")
        player_id = None
        if player is not None:
            account = await self.core.accounts.find_account(player)
            if account is None:
                raise ApiError(404, "unknown_player", "no player %r" % player)
            player_id = account.id
        rows = await self.core.ratings.matches(game, player_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        query = {"limit": limit, "before": rows[-1]["id"] if rows else 0}
        query.update({k: v for k, v in (("player", player), ("game", game)) if v is not None})
        return {"matches": rows, "next": "/api/matches?" + urlencode(query) if more else None}


class Api(resource.Resource):
    def __init__(self, core):
        super().__init__()
        self.putChild(b"leaderboard", Leaderboard(core))
        self.putChild(b"players", Players(core))
        self.putChild(b"matches", Matches(core))

    def getChild(self, path, request):
        return NotFound()

    def render(self, request):  # /api itself is no page either (JSON, not a 405 page)
        return NotFound().render(request)
