"""The uttt handler and game on a real Core (bcrypt cost 4), driven through FakeChannels.

Timers (the 7-day move deadline, the matching loop) run on a task.Clock; the database
runs on the real reactor. Most scenarios run on SQLite only (the store has its own tests
on both engines); the ones marked `both` also run on PostgreSQL.
"""

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from gamed.core.testing import FakeChannel, connect
from gamed.store.uttt import UtttStore
from gamed.uttt import rules
from gamed.uttt.connection import UtttConnection
from gamed.uttt.game import UtttGame
from gamed.uttt.live import Tuning

WEEK = 7 * 24 * 3600.0
# player_a wins the top row of sub-boards; no move is ever sent to a decided sub-board
WINNING_GAME = [
    (0, 0, 0, 1), (0, 1, 0, 0), (0, 0, 1, 1), (1, 1, 0, 0), (0, 0, 2, 1),
    (2, 1, 1, 0), (1, 0, 0, 2), (0, 2, 1, 0), (1, 0, 1, 2), (1, 2, 1, 0),
    (1, 0, 2, 2), (2, 2, 2, 0), (2, 0, 0, 1), (0, 1, 2, 0), (2, 0, 1, 1),
    (1, 1, 2, 0), (2, 0, 2, 1),
]


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


async def eventually(check, timeout=3.0):
    """Wait (on the real reactor) until check() is true."""
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await sleep(0.01)
    assert check(), "condition not met within %s s" % timeout


class Client:
    """One connection to the game, recording what it was sent."""

    def __init__(self, game, peer="127.0.0.1:40000"):
        self.game = game
        self.handler = UtttConnection(game)
        self.channel = connect(self.handler, FakeChannel(peer))
        self.name = None
        self.session = None

    async def send(self, type_, data=None, raw=None):
        message = raw if raw is not None else {"type": type_, "data": data or {}}
        self.handler.message_received(message)
        await self.handler.idle()
        await self.game.writer.drained()

    def take(self, type_=None):
        sent = self.channel.take()
        return [m for m in sent if type_ is None or m.get("type") == type_]

    def last(self, type_):
        found = [m for m in self.channel.sent if m.get("type") == type_]
        assert found, "no %r among %r" % (type_, self.channel.sent)
        return found[-1]["data"]

    def updates(self, match_id=None):
        return [m["data"] for m in self.channel.sent if m.get("type") == "match_update"
                and (match_id is None or m["data"]["id"] == match_id)]

    async def login(self, name, pw="secret-pw"):
        await self.send("login", {"name": name, "pw": pw})
        reply = self.last("login_response")
        if reply["success"]:
            self.name, self.session = reply["user"], reply["id"]
        return reply

    async def temp(self, name=None):
        await self.send("temp_session", {"name": name})
        reply = self.last("login_response")
        if reply["success"]:
            self.name, self.session = reply["user"], reply["id"]
        return reply

    async def move(self, match_id, sx, sy, x, y, strings=False):
        conv = str if strings else int
        await self.send("move", {"id": match_id, "sub_x": conv(sx), "sub_y": conv(sy),
                                 "x": conv(x), "y": conv(y)})

    def lose(self):
        self.channel.closed = True
        self.handler.connection_lost("gone")


@pytest.fixture
def clock():
    clock = task.Clock()
    clock.advance(1_700_000_000)
    return clock


@pytest.fixture
def game(core, clock):
    game = UtttGame(core, UtttStore(core.database), clock, Tuning(pair_interval=2.0))
    game.startService()
    pytest_twisted.blockon(game.when_loaded())
    yield game
    pytest_twisted.blockon(game.stopService())


def sqlite_only(func):
    return pytest.mark.sqlite_only(func)


async def players(game, *names, registered=True):
    clients = []
    for index, name in enumerate(names):
        client = Client(game, "127.0.0.%d:%d" % (index + 1, 40000 + index))
        reply = await (client.login(name) if registered else client.temp(name))
        assert reply["success"], reply
        clients.append(client)
    return clients


async def start(a, b):
    """a invites b; returns the match id."""
    await a.send("match_request", {"player": b.name})
    assert a.last("match_request_response")["success"] is True
    await eventually(lambda: b.updates())
    return b.updates()[-1]["id"]


# -- sessions ------------------------------------------------------------------------------

@sqlite_only
@pytest_twisted.ensureDeferred
async def test_temp_session_is_unregistered_with_a_secret_session_id(game):
    client = Client(game)
    reply = await client.temp("Guesty")
    assert reply["success"] is True and reply["registered"] is False
    assert reply["user"] == "guesty" and len(reply["id"]) >= 32
    elo = client.last("elo_update")
    assert elo["elo"] is None and elo["rank"] is None
    assert client.last("friends_update") == {"friends": [], "elos": [], "online": []}


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_temp_session_without_a_name_gets_one(game):
    client = Client(game)
    reply = await client.temp(None)
    assert reply["success"] and rules_name_ok(reply["user"])


def rules_name_ok(name):
    from gamed.uttt.messages import NAME_PATTERN
    return bool(NAME_PATTERN.match(name))


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_login_registers_then_checks_the_password_and_lower_cases(game):
    first = Client(game)
    reply = await first.login("MixedCase", "pw1")
    assert reply["success"] and reply["registered"] is True and reply["user"] == "mixedcase"
    elo = first.last("elo_update")
    assert elo["elo"] == 1000.0 and isinstance(elo["rank"], int)
    assert first.last("friends_update") == {"friends": [], "elos": [], "online": []}
    other = Client(game, "127.0.0.9:1")
    wrong = await other.login("mixedcase", "pw2")
    assert wrong["success"] is False and isinstance(wrong["msg"], str)
    right = await other.login("MIXEDCASE", "pw1")
    assert right["success"] is True and right["registered"] is True


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_login_with_an_empty_or_null_password_is_temporary(game):
    for pw in ("", None):
        client = Client(game)
        await client.send("login", {"name": "tmp%s" % ("e" if pw == "" else "n"), "pw": pw})
        reply = client.last("login_response")
        assert reply["success"] and reply["registered"] is False


@sqlite_only
@pytest.mark.parametrize("name", ["ab", "a" * 17, "has space", "bad!name", "dots.no",
                                  "\u00fcmlaut", "", 12, None, ["x"]])
@pytest_twisted.ensureDeferred
async def test_bad_names_are_refused_and_the_connection_stays(game, name):
    client = Client(game)
    await client.send("login", {"name": name, "pw": "pw"})
    reply = client.last("login_response")
    assert reply["success"] is False and reply["msg"]
    assert not client.channel.closed
    assert (await client.temp("fine_name"))["success"]


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_passwords_over_32_characters_are_refused(game):
    client = Client(game)
    assert (await client.login("longpw", "p" * 33))["success"] is False
    assert (await client.login("longpw", "p" * 32))["success"] is True


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_requests_before_a_session_are_refused(game):
    client = Client(game)
    for type_ in ("match_request", "move", "end_match", "match_states_request",
                  "friend_request", "unfriend_request"):
        await client.send(type_, {"player": None, "id": "1", "user": "x", "sub_x": 0,
                                  "sub_y": 0, "x": 0, "y": 0})
        [reply] = client.take()
        assert reply["data"]["success"] is False, reply
        assert reply["data"]["error"] == "not_logged_in"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_temporary_name_held_by_someone_online_is_not_available(game):
    first = Client(game)
    assert (await first.temp("shared"))["success"]
    second = Client(game)
    assert (await second.temp("shared"))["success"] is False
    registered = Client(game)
    await registered.login("takenname")
    assert (await second.temp("takenname"))["success"] is False
    old_session = first.session
    first.lose()  # free again once its holder left and has no open match
    assert (await second.temp("shared"))["success"] is True
    intruder = Client(game)
    await intruder.send("reconnect", {"id": old_session})  # the old holder's token is void
    assert intruder.last("reconnect_response")["success"] is False


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_freed_temporary_name_goes_to_one_of_two_racing_claims(game):
    first = Client(game)
    assert (await first.temp("racer"))["success"]
    first.lose()
    one, two = Client(game), Client(game)
    # both claims are in flight at once; only one may take the name over
    one.handler.message_received({"type": "temp_session", "data": {"name": "racer"}})
    two.handler.message_received({"type": "temp_session", "data": {"name": "racer"}})
    await one.handler.idle()
    await two.handler.idle()
    results = sorted(c.last("login_response")["success"] for c in (one, two))
    assert results == [False, True]
    assert len(game.connections[one.handler.player.id if one.handler.player
                                else two.handler.player.id]) == 1


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_temporary_name_playing_blockattack_is_not_available(game):
    account = await game.accounts.guest("udpguy")
    game.presence.arrived(account.id, "blockattack")
    assert (await Client(game).temp("udpguy"))["success"] is False
    game.presence.left(account.id, "blockattack")
    assert (await Client(game).temp("udpguy"))["success"] is True


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_temporary_name_goes_to_a_registration_only_without_open_matches(game):
    [guest] = await players(game, "tempwho", registered=False)
    [host] = await players(game, "hostess")
    match_id = await start(guest, host)
    guest.lose()
    claimant = Client(game)
    assert (await claimant.login("tempwho"))["success"] is False  # its match is open
    await host.send("end_match", {"id": match_id})
    await game.writer.drained()
    await eventually(lambda: not game.matches)
    assert (await claimant.login("tempwho"))["success"] is True
    assert claimant.last("login_response")["registered"] is True


@pytest_twisted.ensureDeferred
async def test_reconnect_restores_the_session_and_resends_open_matches(game):
    a, b = await players(game, "recona", "reconb")
    match_id = await start(a, b)
    a.lose()
    again = Client(game)
    await again.send("reconnect", {"id": a.session})
    reply = again.last("reconnect_response")
    assert reply == {"success": True, "msg": reply["msg"], "id": a.session, "user": "recona",
                     "registered": True, "error": None}
    assert [u["id"] for u in again.updates()] == [match_id]
    bogus = Client(game)
    await bogus.send("reconnect", {"id": "no-such-session"})
    assert bogus.last("reconnect_response")["success"] is False


# -- matches ---------------------------------------------------------------------------------

@sqlite_only
@pytest_twisted.ensureDeferred
async def test_two_random_requests_start_a_ranked_match_the_waiting_player_first(game):
    a, b = await players(game, "randa", "randb")
    await a.send("match_request", {"player": None})
    assert a.last("match_request_response")["success"] is True
    assert a.updates() == []
    await a.send("match_request", {"player": None})
    assert a.last("match_request_response")["error"] == "already_waiting"
    await b.send("match_request", {"player": None})
    assert b.last("match_request_response")["success"] is True
    [upd_a], [upd_b] = a.updates(), b.updates()
    assert upd_a == upd_b
    state = upd_a["match_state"]
    assert state["player_a"] == "randa" and state["player_b"] == "randb"
    assert state["active_player"] == state["current_player"] == "randa"
    assert state["last_move"] is None and state["game_over"] is False
    assert upd_a["ranked"] is True
    assert upd_a["revoke_time"] == "2023-11-21 22:13:20"  # created + 7 days (UTC)


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_random_matching_prefers_close_ratings_and_widens_with_time(game, clock):
    a, b, c = await players(game, "close_a", "close_b", "close_c")
    game.players[b.handler.player.id].rating = 1500.0
    await b.send("match_request", {"player": None})  # 1500 waits
    await a.send("match_request", {"player": None})  # 1000: too far, waits too
    assert a.updates() == [] and b.updates() == []
    await c.send("match_request", {"player": None})  # 1000 meets a, not b
    assert c.updates() and c.updates()[0]["match_state"]["player_a"] == "close_a"
    d, = await players(game, "close_d")
    await d.send("match_request", {"player": None})
    assert d.updates() == []
    clock.advance(20.0)  # windows widen to 600: b and d meet on the next round
    await eventually(lambda: d.updates())
    assert d.updates()[0]["match_state"]["player_a"] == "close_b"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_waiting_player_who_leaves_is_not_matched(game):
    a, b = await players(game, "leavera", "leaverb")
    await a.send("match_request", {"player": None})
    a.lose()
    await b.send("match_request", {"player": None})
    assert b.updates() == [] and game.waiting.keys() == {b.handler.player.id}


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_an_invite_starts_the_match_and_tells_the_invited_player(game):
    a, b = await players(game, "inviter", "invitee")
    await a.send("match_request", {"player": "INVITEE"})
    [upd_b] = b.updates()
    assert upd_b["match_state"]["player_a"] == "inviter"
    assert b.last("match_request") == {"player": "inviter", "id": upd_b["id"]}
    # accepting the invite with an invite does not start a second match
    await b.send("match_request", {"player": "inviter"})
    assert b.last("match_request_response")["success"] is True
    assert {u["id"] for u in b.updates()} == {upd_b["id"]}
    assert len(game.matches) == 1


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_invites_to_nobody_or_yourself_are_refused(game):
    (a,) = await players(game, "lonely")
    for player, code in (("nobody_here", "unknown_player"), ("LONELY", "invalid_opponent"),
                         ("bad name!", "invalid_name"), (42, "invalid_field")):
        await a.send("match_request", {"player": player})
        reply = a.last("match_request_response")
        assert reply["success"] is False and reply["error"] == code, reply


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_guest_plays_unranked(game):
    (a,) = await players(game, "member")
    (g,) = await players(game, "visitor", registered=False)
    await start(a, g)
    assert a.updates()[-1]["ranked"] is False


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_at_most_five_open_matches(game):
    (a,) = await players(game, "busyone")
    others = await players(game, *["opp%d" % i for i in range(7)], registered=False)
    for other in others[:5]:
        await start(a, other)
    await a.send("match_request", {"player": others[5].name})
    assert a.last("match_request_response")["error"] == "too_many_matches"
    await a.send("match_request", {"player": None})
    assert a.last("match_request_response")["error"] == "too_many_matches"
    # nor can someone else start a sixth match with a
    await others[6].send("match_request", {"player": "busyone"})
    assert others[6].last("match_request_response")["error"] == "too_many_matches"
    a.take()
    await a.send("match_states_request")
    assert len(a.updates()) == 5


@pytest_twisted.ensureDeferred
async def test_a_whole_game_updates_both_players_and_moves_elo(game):
    a, b = await players(game, "winner", "loser")
    match_id = await start(a, b)
    for index, move in enumerate(WINNING_GAME):
        mover = (a, b)[index % 2]
        await mover.move(match_id, *move, strings=bool(index % 2))
        ua, ub = a.updates(match_id)[-1], b.updates(match_id)[-1]
        assert ua == ub
        state = ua["match_state"]
        assert state["last_move"] == dict(zip(("sub_x", "sub_y", "x", "y"), move))
        assert sum(v != 0 for row in state["complete_field"] for v in row) == index + 1
    assert state["game_over"] is True and state["player_won"] == "winner"
    assert state["is_draw"] is False and state["active_player"] is None
    assert state["global_field"][0] == [1, 1, 1]
    await eventually(lambda: len([m for m in a.channel.sent if m["type"] == "elo_update"]) > 1
                     and len([m for m in b.channel.sent if m["type"] == "elo_update"]) > 1)
    assert a.last("elo_update")["elo"] == pytest.approx(1010.0)
    assert b.last("elo_update")["elo"] == pytest.approx(990.0)
    assert a.last("elo_update")["top_names"][:2] == ["winner", "loser"]
    assert match_id not in {str(i) for i in game.matches}
    await a.send("move", {"id": match_id, "sub_x": 1, "sub_y": 1, "x": 1, "y": 1})
    assert a.last("move_response")["error"] == "no_such_match"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_illegal_moves_are_refused_with_a_reason_and_change_nothing(game):
    a, b = await players(game, "illegala", "illegalb")
    match_id = await start(a, b)
    await a.move(match_id, 0, 0, 2, 1)  # sends b to sub-board (2, 1)
    before = a.updates(match_id)[-1]
    cases = [
        (a, (1, 1, 1, 1), "not_your_turn"),
        (b, (0, 0, 0, 0), "wrong_sub_board"),
        (b, (2, 1, 1, 1), None),  # legal: sends a to the centre
        (a, (1, 1, 1, 1), None),  # legal: b to the centre
        (b, (1, 1, 1, 1), "occupied"),
    ]
    for client, move, code in cases:
        count = len(a.updates(match_id))
        await client.move(match_id, *move)
        if code is None:
            assert len(a.updates(match_id)) == count + 1
            continue
        reply = client.last("move_response")
        assert reply["success"] is False and reply["error"] == code and reply["id"] == match_id
        assert len(a.updates(match_id)) == count
    assert before["match_state"]["complete_field"] != a.updates(match_id)[-1]["match_state"][
        "complete_field"]


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_moves_on_other_players_matches_or_bad_ids_are_refused(game):
    a, b, c = await players(game, "owner_a", "owner_b", "intruder")
    match_id = await start(a, b)
    for bad_id in (match_id, "999999", "abc", "-1"):
        await c.move(bad_id, 1, 1, 1, 1)
        assert c.last("move_response")["error"] == "no_such_match"
        await c.send("end_match", {"id": bad_id})
        assert c.last("end_match_response")["error"] == "no_such_match"
    assert len(a.updates(match_id)) == 1
    await c.send("move", {"id": match_id, "sub_x": "a", "sub_y": [], "x": None, "y": 5})
    assert c.last("move_response")["error"] == "invalid_field"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_end_match_before_both_moved_ends_it_unrated(game):
    a, b = await players(game, "cancela", "cancelb")
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    await a.send("end_match", {"id": match_id})
    assert a.last("end_match_response")["success"] is True
    for client in (a, b):
        state = client.updates(match_id)[-1]["match_state"]
        assert state["game_over"] is True and state["player_won"] == "cancelb"
    assert game.matches == {}
    for client in (a, b):
        rating = await game.ratings.get_rating(client.handler.player.id, "uttt")
        assert rating.played == 0 and rating.rating == 1000.0
    history = await game.ratings.history(b.handler.player.id, "uttt")
    assert history[0].reason == rules.CANCELLED and not history[0].ranked


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_player_gone_while_the_result_is_written_is_shown_it_at_next_login(game):
    a, b = await players(game, "writer_a", "writer_b")
    match_id = await start(a, b)
    a.handler.message_received({"type": "end_match", "data": {"id": match_id}})
    b.lose()  # before the result is committed: b was online when the write began
    await a.handler.idle()
    await game.writer.drained()
    await eventually(lambda: not game.matches)
    await sleep(0.05)  # the unseen mark is its own small write
    back = Client(game)
    assert (await back.login("writer_b"))["success"]
    [final] = back.updates(match_id)
    assert final["match_state"]["game_over"] and final["match_state"]["player_won"] == "writer_b"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_waiting_player_whose_match_cannot_be_written_waits_again(game, monkeypatch):
    a, b, c = await players(game, "waitera", "waiterb", "waiterc")
    await a.send("match_request", {"player": None})
    assert a.last("match_request_response")["success"] and a.handler.player.id in game.waiting
    real = game.create_match
    monkeypatch.setattr(game, "create_match",
                        lambda *args, **kw: defer.fail(RuntimeError("database down")))
    await b.send("match_request", {"player": None})
    assert b.last("match_request_response")["success"] is False
    assert a.handler.player.id in game.waiting and not game.taken  # a is not lost
    monkeypatch.setattr(game, "create_match", real)
    await c.send("match_request", {"player": None})
    assert c.last("match_request_response")["success"]
    assert a.updates() and c.updates() and a.handler.player.id not in game.waiting


@pytest_twisted.ensureDeferred
async def test_end_match_after_both_moved_is_a_loss(game):
    a, b = await players(game, "quitter", "stayer")
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    await b.move(match_id, 1, 1, 0, 0)
    await a.send("end_match", {"id": match_id})
    for client in (a, b):
        state = client.updates(match_id)[-1]["match_state"]
        assert state["game_over"] is True and state["player_won"] == "stayer"
    await eventually(lambda: b.last("elo_update")["elo"] > 1000)
    assert b.last("elo_update")["elo"] == pytest.approx(1010.0)
    history = await game.ratings.history(a.handler.player.id, "uttt")
    assert history[0].outcome == "loss" and history[0].reason == rules.ABANDONED
    assert history[0].details == {"uttt_match": int(match_id), "moves": 2}


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_week_without_a_move_loses_for_the_player_to_move(game, clock):
    a, b = await players(game, "slowpoke", "patient")
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    clock.advance(WEEK - 10)
    await b.move(match_id, 1, 1, 0, 0)  # the deadline restarts with each move
    clock.advance(WEEK - 1)
    assert a.updates(match_id)[-1]["match_state"]["game_over"] is False
    clock.advance(2)
    await game.writer.drained()
    await eventually(lambda: a.updates(match_id)[-1]["match_state"]["game_over"])
    state = b.updates(match_id)[-1]["match_state"]
    assert state["player_won"] == "patient"  # a was to move
    history = await game.ratings.history(b.handler.player.id, "uttt")
    assert history[0].reason == rules.TIMEOUT and history[0].outcome == "win"


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_move_after_the_deadline_is_refused_even_before_its_timer_runs(game, clock):
    a, b = await players(game, "lateone", "ontime")
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    clock.rightNow += WEEK + 1  # time passes; the deadline's timer has not run yet
    await b.move(match_id, 1, 1, 0, 0)
    reply = b.last("move_response")
    assert reply["success"] is False and reply["error"] == "game_over"
    await game.writer.drained()
    await eventually(lambda: a.updates(match_id)[-1]["match_state"]["game_over"])
    assert a.updates(match_id)[-1]["match_state"]["player_won"] == "lateone"  # b was to move


@pytest_twisted.ensureDeferred
async def test_open_matches_and_deadlines_survive_a_restart(core, clock):
    game = UtttGame(core, UtttStore(core.database), clock)
    game.startService()
    await game.when_loaded()
    a, b = await players(game, "durable_a", "durable_b")
    match_id = await start(a, b)
    await a.move(match_id, 2, 2, 0, 1)
    state = a.updates(match_id)[-1]["match_state"]
    await game.stopService()

    again = UtttGame(core, UtttStore(core.database), clock)
    again.startService()
    await again.when_loaded()
    a2 = Client(again)
    assert (await a2.login("durable_a"))["success"]
    assert a2.updates(match_id)[-1]["match_state"] == state
    await again.stopService()

    clock.advance(WEEK + 1)  # the daemon was down when the deadline passed
    third = UtttGame(core, UtttStore(core.database), clock)
    third.startService()
    await third.when_loaded()
    clock.advance(0)
    await eventually(lambda: not third.matches)
    b2 = Client(third)
    assert (await b2.login("durable_b"))["success"]
    [final] = b2.updates(match_id)  # shown once at the next login
    assert final["match_state"]["game_over"] and final["match_state"]["player_won"] == "durable_a"
    await third.stopService()


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_results_reached_while_away_are_shown_once_at_login(game):
    a, b = await players(game, "awaya", "awayb")
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    await b.move(match_id, 1, 1, 0, 0)
    b.lose()
    await a.send("end_match", {"id": match_id})
    again = Client(game)
    await again.login("awayb")
    [final] = again.updates(match_id)
    assert final["match_state"]["player_won"] == "awayb"
    later = Client(game)
    await later.login("awayb")
    assert later.updates(match_id) == []


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_move_while_the_previous_one_is_being_saved_is_refused(game):
    a, b = await players(game, "racea", "raceb")
    match_id = await start(a, b)
    match = game.matches[int(match_id)]
    match.pending = True
    await a.move(match_id, 1, 1, 1, 1)
    assert a.last("move_response")["error"] == "busy"
    match.pending = False


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_failed_commit_refuses_the_move_and_keeps_the_position(game):
    a, b = await players(game, "faila", "failb")
    match_id = await start(a, b)
    original = game.writer.write_batch
    game.writer.write_batch = lambda ops: defer.fail(RuntimeError("disk on fire"))
    try:
        await a.move(match_id, 1, 1, 1, 1)
    finally:
        game.writer.write_batch = original
    assert a.last("move_response")["error"] == "internal_error"
    assert len(b.updates(match_id)) == 1
    match = game.matches[int(match_id)]
    assert match.board.moves == 0 and not match.pending
    await a.move(match_id, 1, 1, 1, 1)  # and the match goes on
    assert b.updates(match_id)[-1]["match_state"]["last_move"] is not None


# -- friends -------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_friends_requests_updates_and_presence(game):
    a, b = await players(game, "frienda", "friendb")
    a.take()
    b.take()
    await a.send("friend_request", {"user": "FriendB"})
    assert a.last("friend_request_response")["success"] is True
    assert a.last("friends_update") == {"friends": ["friendb"], "elos": [1000.0],
                                        "online": [True]}
    await eventually(lambda: b.take("friends_update"))
    await b.send("friend_request", {"user": "frienda"})
    assert b.last("friend_request_response")["success"] is True  # already friends
    a.take()
    b.lose()
    await eventually(lambda: a.take("friends_update") != [])
    again = Client(game)
    await again.login("friendb")
    await eventually(lambda: any(m["data"]["online"] == [True]
                                 for m in a.channel.sent if m["type"] == "friends_update"))
    await a.send("unfriend_request", {"user": "friendb"})
    assert a.last("unfriend_request_response")["success"] is True
    assert a.last("friends_update")["friends"] == []
    await a.send("unfriend_request", {"user": "friendb"})
    assert a.last("unfriend_request_response")["success"] is False


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_friend_requests_for_unknown_users_guests_or_yourself_fail(game):
    (a,) = await players(game, "friendly")
    (g,) = await players(game, "tempfriend", registered=False)
    for user in ("nobody_at_all", "friendly", "tempfriend", 7):
        await a.send("friend_request", {"user": user})
        assert a.last("friend_request_response")["success"] is False
    await g.send("friend_request", {"user": "friendly"})
    assert g.last("friend_request_response")["error"] == "not_registered"


# -- bad input -----------------------------------------------------------------------------

@sqlite_only
@pytest_twisted.ensureDeferred
async def test_malformed_frames_get_one_error_reply_each(game):
    (a,) = await players(game, "badinput")
    a.take()
    for text in ("not json", "[1, 2]", '"str"', '{"type": "move"}', '{"data": {}}',
                 '{"type": "no_such_type", "data": {}}', '{"type": 5}',
                 '{"type": "login", "data": [1]}', '{"type": "move", "data": null}'):
        a.handler.text_received(text)
        await a.handler.idle()
        replies = a.take()
        assert len(replies) == 1, (text, replies)
        assert replies[0]["data"]["success"] is False and replies[0]["data"]["msg"], replies
    assert not a.channel.closed


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_too_many_queued_requests_are_refused(game):
    (a,) = await players(game, "flooder")
    a.take()
    for _ in range(game.tuning.max_queued_requests + 5):
        a.handler.message_received({"type": "friend_request", "data": {"user": "nobody_x"}})
    await a.handler.idle()
    busy = [m for m in a.take() if m["data"].get("error") == "busy"]
    assert busy



@sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_match_that_cannot_be_stored_is_refused_not_announced(game):
    a, b = await players(game, "nostore_a", "nostore_b")
    a.take()
    b.take()
    original = game.writer.write_batch
    game.writer.write_batch = lambda ops: defer.fail(RuntimeError("disk full"))
    try:
        await a.send("match_request", {"player": "nostore_b"})
    finally:
        game.writer.write_batch = original
    [reply] = a.take("match_request_response")
    assert reply["data"]["success"] is False and reply["data"]["error"] == "internal_error"
    assert a.updates() == [] and b.take() == []
    assert game.open_count(a.handler.player.id) == 0  # the reservation was released


@sqlite_only
@pytest_twisted.ensureDeferred
async def test_friends_see_a_new_rating_after_a_ranked_result(game):
    a, b, fan = await players(game, "rated_a", "rated_b", "rated_fan")
    await fan.send("friend_request", {"user": "rated_a"})
    match_id = await start(a, b)
    await a.move(match_id, 1, 1, 1, 1)
    await b.move(match_id, 1, 1, 0, 0)
    fan.take()
    await b.send("end_match", {"id": match_id})
    await eventually(lambda: any(m["type"] == "friends_update" and m["data"]["elos"][0] > 1000
                                 for m in fan.channel.sent))


@pytest_twisted.ensureDeferred
async def test_the_database_judges_two_games_sharing_one_match(core, clock):
    """Two nodes' games hold a copy of one match (here without a bus between them, the
    worst case): a move on the stale copy is refused as `stale`, the player is shown the
    database's position, and the match has exactly the move committed first."""
    first = UtttGame(core, UtttStore(core.database), clock)
    first.startService()
    await first.when_loaded()
    a, b = await players(first, "judge_a", "judge_b")
    match_id = await start(a, b)
    second = UtttGame(core, UtttStore(core.database), clock)
    second.startService()
    await second.when_loaded()  # loads the open match: its copy is at move 0
    a2 = Client(second)
    assert (await a2.login("judge_a"))["success"]
    await a.move(match_id, 1, 1, 1, 1)  # committed through the first game
    await first.writer.drained()
    a2.take()
    await a2.move(match_id, 1, 1, 0, 0)  # the second's copy still thinks a is to move
    await second.writer.drained()
    await eventually(lambda: any(m.get("type") == "move_response" for m in a2.channel.sent))
    assert a2.last("move_response")["error"] == "stale"
    shown = a2.updates(match_id)[-1]["match_state"]
    assert shown["last_move"] == {"sub_x": 1, "sub_y": 1, "x": 1, "y": 1}
    assert shown["active_player"] == "judge_b"
    row = await first.store.get_match(int(match_id))
    assert row.moves == 1 and row.last_move == "1111"
    await first.stopService()
    await second.stopService()
