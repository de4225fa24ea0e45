"""The classic listener's protocol on a StringTransport, a real core (SQLite and PostgreSQL)
and a fake 60 Hz clock: greeting, lockstep, pacing, refusals, a classic player against a
JSON-lines player, results recorded once."""

import io
import pickle

import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from gamed.core.transport import StreamEndpoint
from gamed.novaglide import classic_wire as wire
from gamed.novaglide.classic import ClassicConnection, ClassicProtocol
from gamed.novaglide.rules import DT

from .classic_client import pressed, request, scancode_wrapper_registered
from .test_service import Player, make_game, until


class ClassicPeer:
    """One original client on a StringTransport."""

    def __init__(self, game, port=50000, max_request=4096, limits=None):
        settings = limits or game.settings
        self.endpoint = StreamEndpoint("novaglide", "classic", lambda: ClassicConnection(game),
                                       settings, game.clock, game.core.metrics.service("novaglide"))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.proto = ClassicProtocol(self.endpoint, max_request)
        self.proto.makeConnection(self.transport)
        self.id = "uknown"

    def greeting(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def send(self, flag, data):
        self.proto.dataReceived(request(flag, data, self.id))

    def replies(self) -> list:
        stream = io.BytesIO(self.transport.value())
        self.transport.clear()
        out = []
        while stream.tell() < len(stream.getvalue()):
            out.append(pickle.load(stream))
        return out

    async def ask(self, flag, data, clock=None):
        """Send, then wait for exactly one reply (ticking the clock if given)."""
        self.send(flag, data)
        got = []

        def answered():
            if clock is not None:
                clock.advance(DT)
            got.extend(self.replies())
            return got

        await until(answered)
        assert len(got) == 1, got
        return got[0]

    async def login(self, name, password="pw"):
        self.greeting()
        reply = await self.ask("log_in_data", [name, password])
        self.id = reply["data"][2]
        return reply


async def classic_against_json(game):
    """ann on the classic wire and ben on JSON lines, queued into one match."""
    classic = ClassicPeer(game)
    await classic.login("ann")
    json_player = Player(game)
    await json_player.login("ben")
    await classic.ask("queued_solo", ["no_data"])
    await until(lambda: game.queue.entries)
    await json_player.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.matches)
    return classic, json_player


@pytest_twisted.ensureDeferred
async def test_greeting_login_and_lockstep_status_paced_by_the_tick(core):
    game, clock = make_game(core)
    peer = ClassicPeer(game)
    assert peer.greeting() == wire.WELCOME
    reply = await peer.ask("log_in_data", ["ann", "pw"])
    assert reply["flag"] == "change_of_status" and reply["sender"] == "server"
    assert reply["data"][:2] == ["online", "registering new user"]
    assert isinstance(reply["time"], str)
    peer.id = reply["data"][2]
    peer.send("online", ["no_data"])
    assert peer.replies() == []  # a menu poll waits for the tick
    clock.advance(DT)
    [status] = peer.replies()
    assert status["data"] == ["online", "ann", peer.id]
    clock.advance(DT * 10)
    assert peer.replies() == []  # nothing unasked


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_a_status_the_login_form_shows(core):
    game, _ = make_game(core)
    await ClassicPeer(game).login("ann", "right")
    other = ClassicPeer(game, port=50001)
    other.greeting()
    reply = await other.ask("log_in_data", ["ann", "wrong"])
    assert reply["data"][0] == "waiting_for_approval" and reply["data"][2] == "unknown"


@pytest_twisted.ensureDeferred
async def test_menu_queries_have_the_clients_shapes(core):
    game, clock = make_game(core)
    peer = ClassicPeer(game)
    await peer.login("ann")
    elo = await peer.ask("get_elo", ["ann"])
    assert elo["flag"] == "client_elo"
    rating, floor = elo["data"]
    assert type(rating) is int and type(floor) is list and type(floor[0]) is tuple
    winrate = await peer.ask("get_winrate", ["ann"])
    assert winrate["data"] == [0]
    history = await peer.ask("get_match_history", ["ann"])
    assert history["data"] == [[], []]
    challengers = await peer.ask("get_challengers", ["no_data"])
    assert challengers["flag"] == "challengers" and isinstance(challengers["data"], list)
    queued = await peer.ask("queued_solo", ["no_data"])
    assert queued["flag"] == "Waiting_for_opponent"
    await until(lambda: game.queue.entries)  # the rating is read, then it queues
    waiting = await peer.ask("Waiting_for_opponent", ["no_data"], clock)
    assert waiting["data"][0] == "waiting_for_opponent"


@pytest_twisted.ensureDeferred
async def test_a_classic_player_plays_a_json_player_to_the_end(core):
    game, clock = make_game(core, match_seconds=1.0)
    classic = ClassicPeer(game)
    await classic.login("ann")
    json_player = Player(game)
    await json_player.login("ben")
    before = (await classic.ask("get_elo", ["ann"]))["data"][0]
    await classic.ask("queued_solo", ["no_data"])
    classic.send("Waiting_for_opponent", ["no_data"])  # the loading screen's poll
    await until(lambda: game.queue.entries)
    await json_player.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.matches)  # the second to queue is paired at once
    [first] = classic.replies()  # the poll in flight got the match's first state
    json_player.send("ingame", [[1180, 0], ["w"], "wsad"])  # ben steps out of the way
    assert first["flag"] == "game_state_1" and first["data"][0] == 1
    assert first["data"][4:6] == ["ann", "ben"] and len(first["data"]) == 23
    with scancode_wrapper_registered() as wrapper:
        keys = pressed(wrapper, "d")
        ingame = request("ingame", [(640, 360), keys, "wsad"], classic.id)
    states, end = [first], None
    for _ in range(200):
        classic.proto.dataReceived(ingame)
        assert classic.replies() == []  # answered by the next tick
        clock.advance(DT)
        got = classic.replies()
        for _ in range(2000):  # none while the result is being written
            if got:
                break
            await task.deferLater(reactor, 0.005, lambda: None)
            clock.advance(DT)
            got = classic.replies()
        assert len(got) == 1
        if got[0]["flag"] == "end_game_state_1":
            end = got[0]
            break
        states.append(got[0])
    assert end is not None
    assert states[-1]["data"][6] > first["data"][6]  # held "d": moved right
    stats, winner = end["data"]
    assert winner == "ann" and stats["ann"]["goals"] == 1  # the ball went in ben's goal
    assert list(stats) == ["ann", "ben"]
    assert stats["ann"]["elo"] == before and type(stats["ann"]["elo"]) is int
    json_end = [m for m in json_player.channel.sent if m.get("flag") == "end_game_state_1"]
    assert len(json_end) == 1 and json_end[0]["data"][1] == winner
    # the end screen polls "online": a status again, and the result is stored once
    after = await classic.ask("online", ["no_data"], clock)
    assert after["flag"] == "change_of_status" and after["data"][0] == "online"
    history = await classic.ask("get_match_history", ["ann"])
    [row] = history["data"][0]
    assert row[1:3] == ("ann", "ben") and row[3] == before
    rows = await core.ratings.history(classic.proto.handler.account.id, "novaglide")
    assert len(rows) == 1


@pytest_twisted.ensureDeferred
async def test_an_end_between_two_requests_is_held_for_the_next(core):
    game, clock = make_game(core)
    classic, json_player = await classic_against_json(game)
    clock.advance(0.5)
    assert classic.replies() == []  # no request in flight: the first states are not sent
    game.end_match(game.matches[0], reason="aborted")
    await until(lambda: [m for m in json_player.channel.sent
                         if m.get("flag") == "end_game_state_1"])
    end = await classic.ask("ingame", ["no_data"], clock)
    assert end["flag"] == "end_game_state_1"
    status = await classic.ask("ingame", ["no_data"], clock)
    assert status["flag"] == "change_of_status"  # the end is told once


@pytest_twisted.ensureDeferred
async def test_requests_sent_ahead_are_answered_one_at_a_time(core):
    game, clock = make_game(core)
    peer = ClassicPeer(game)
    await peer.login("ann")
    peer.proto.dataReceived(request("online", ["no_data"], peer.id) +
                            request("get_winrate", ["ann"], peer.id))
    assert peer.replies() == []
    clock.advance(DT)
    got = []
    await until(lambda: got.extend(peer.replies()) or len(got) >= 2)
    assert [g["flag"] for g in got] == ["change_of_status", "winrate"]


@pytest_twisted.ensureDeferred
async def test_an_exploit_closes_only_its_connection(core, tmp_path):
    import os

    class RunsShell:
        def __reduce__(self):
            return (os.system, ("touch %s" % (tmp_path / "pwned"),))

    game, clock = make_game(core)
    good = ClassicPeer(game, port=50001)
    await good.login("ann")
    bad = ClassicPeer(game, port=50002)
    bad.greeting()
    bad.proto.dataReceived(pickle.dumps({"flag": "log_in_data", "data": [RunsShell()]}))
    assert bad.transport.disconnecting and bad.replies() == []
    assert not (tmp_path / "pwned").exists()
    assert game.core.metrics.service("novaglide").errors.get("forbidden_class") == 1
    status = await good.ask("online", ["no_data"], clock)
    assert status["data"][0] == "online"


@pytest_twisted.ensureDeferred
async def test_bad_input_and_unknown_flags_get_one_status_each(core):
    game, clock = make_game(core)
    peer = ClassicPeer(game)
    peer.greeting()
    early = await peer.ask("get_elo", ["ann"])
    assert early["flag"] == "change_of_status" and "log in" in early["data"][1]
    await peer.ask("log_in_data", ["ann", "pw"])
    unknown = await peer.ask("teleport", ["no_data"])
    assert unknown["flag"] == "change_of_status" and "unknown flag" in unknown["data"][1]
    peer.proto.dataReceived(pickle.dumps({"flag": "ingame", "data": [(1, 2), "keys", "wsad"]}))
    assert peer.transport.disconnecting  # a request of the wrong shape: refused, closed
    assert game.core.metrics.service("novaglide").errors.get("bad_request") == 1


@pytest_twisted.ensureDeferred
async def test_limits_stay_a_full_listener_and_a_request_over_the_rate(core):
    game, clock = make_game(core, max_connections=1, rate=1.0, burst=2)
    first = ClassicPeer(game)
    assert first.greeting() == wire.WELCOME
    full = StringTransport()
    proto = ClassicProtocol(first.endpoint, 4096)
    proto.makeConnection(full)
    assert full.value().startswith(b"The server is full") and full.disconnecting
    await first.ask("log_in_data", ["ann", "pw"])
    await first.ask("get_winrate", ["ann"])  # the burst of 2 is spent
    over = await first.ask("get_winrate", ["ann"])  # refused for rate: still one reply
    assert over["flag"] == "change_of_status" and "too many messages" in over["data"][1]
    assert game.core.metrics.service("novaglide").errors.get("rate_limited") == 1
    again = await first.ask("get_winrate", ["ann"])  # refused again: still answered
    assert again["flag"] == "change_of_status" and "slow down" in again["data"][1]


@pytest_twisted.ensureDeferred
async def test_a_menu_that_polls_is_never_idle(core):
    game, clock = make_game(core, idle_timeout=5.0)
    peer = ClassicPeer(game)
    await peer.login("ann")
    for _ in range(10):  # 10 s of polling, one poll a second
        await peer.ask("online", ["no_data"], clock)
        clock.advance(1.0)
    assert not peer.transport.disconnecting
    clock.advance(5.0)  # silent past the timeout: closed
    assert peer.transport.disconnecting


@pytest_twisted.ensureDeferred
async def test_back_to_the_login_form_and_in_again_as_someone_else(core):
    game, clock = make_game(core)
    peer = ClassicPeer(game)
    await peer.login("ann")
    # the client's back arrow shows the login form again; the connection stays open
    other = await peer.ask("log_in_data", ["ben", "pw"])
    assert other["data"][:2] == ["online", "registering new user"]
    assert [c.account.name for c in game.online.values()] == ["ben"]
    again = await peer.ask("log_in_data", ["ben", "pw"])
    assert again["data"][:2] == ["online", "known user"]


@pytest_twisted.ensureDeferred
async def test_play_while_in_a_match_goes_straight_back_into_it(core):
    game, clock = make_game(core, rejoin_grace=15.0)
    first, _ = await classic_against_json(game)
    first.proto.connectionLost()  # the client crashed mid-match
    restarted = ClassicPeer(game, port=50009)
    await restarted.login("ann")  # within the rejoin grace: back in the match
    back = await restarted.ask("queued_solo", ["no_data"], clock)  # PLAY 1V1
    assert back["flag"] == "game_state_1" and back["data"][4:6] == ["ann", "ben"]


@pytest_twisted.ensureDeferred
async def test_a_classic_client_that_leaves_at_any_step_is_not_an_error(core):
    from gamed.core.testing import ErrorLog

    game, clock = make_game(core, rejoin_grace=0.5)
    with ErrorLog() as errors:
        leaver = ClassicPeer(game, port=50020)
        leaver.greeting()
        leaver.send("log_in_data", ["lea", "pw"])  # gone before its login is answered
        leaver.proto.connectionLost()
        for flag, data in (("get_elo", ["ann"]), ("online", ["no_data"])):
            peer = ClassicPeer(game, port=50021)
            await peer.login("ann")
            peer.send(flag, data)  # a query or a poll in flight, then gone
            peer.proto.connectionLost()
            clock.advance(DT)
        classic, json_player = await classic_against_json(game)
        classic.send("ingame", ["no_data"])  # waiting for the next state: gone
        classic.proto.connectionLost()
        for _ in range(60):  # the rejoin grace runs out: ben wins by forfeit
            clock.advance(DT)
        await until(lambda: [m for m in json_player.channel.sent
                             if m.get("flag") == "end_game_state_1"])
        await task.deferLater(reactor, 0.2, lambda: None)  # the late login reply, if any
    assert errors.lines() == []


@pytest_twisted.ensureDeferred
async def test_in_a_match_the_clients_own_input_keeps_every_check(core):
    """The client's ingame pickle, read by its layout, is still rate limited, its values
    still checked, and one byte out of the layout still goes to the safe unpickler."""
    game, clock = make_game(core, rate=5.0, burst=3)
    classic, json_player = await classic_against_json(game)
    match = game.matches[0]

    def next_tick():
        due = game.frames_due
        while game.frames_due == due:
            clock.advance(DT / 4)

    with scancode_wrapper_registered() as wrapper:
        held_d = request("ingame", [(640, 360), pressed(wrapper, "d", "lshift"), "wsad"],
                         classic.id)
        nan_mouse = request("ingame", [(float("nan"), 1.0), pressed(wrapper), "wsad"],
                            classic.id)
    for payload in (held_d, nan_mouse):  # both on the fast path
        assert wire.read_ingame(bytearray(payload), 4096) is not None
    clock.advance(1.0)  # the bucket holds its burst of 3 again
    classic.replies()
    classic.proto.dataReceived(held_d)  # 1
    next_tick()
    [state] = classic.replies()
    assert state["flag"] == "game_state_1"
    assert match.inputs[1].keys == {"d", "lshift"} and match.inputs[1].mouse == (640.0, 360.0)
    classic.proto.dataReceived(nan_mouse)  # 2: read alike, refused by parse_input at once
    [bad] = classic.replies()
    assert bad["flag"] == "change_of_status" and "mouse" in bad["data"][1]
    assert match.inputs[1].keys == {"d", "lshift"}  # the last good input stays
    classic.proto.dataReceived(held_d)  # 3: the burst is spent
    next_tick()
    assert [g["flag"] for g in classic.replies()] == ["game_state_1"]
    classic.proto.dataReceived(held_d)  # over the rate: still one reply, at once
    [over] = classic.replies()
    assert over["flag"] == "change_of_status" and "too many messages" in over["data"][1]
    assert game.core.metrics.service("novaglide").errors.get("rate_limited") == 1
    # the class name one byte off: the safe unpickler refuses it, the connection closes
    clock.advance(1.0)
    classic.proto.dataReceived(held_d.replace(b"ScancodeWrapper", b"ScancodeWrappex"))
    assert classic.transport.disconnecting
    assert game.core.metrics.service("novaglide").errors.get("forbidden_class") == 1
    assert not json_player.channel.closed  # the other player is unaffected
