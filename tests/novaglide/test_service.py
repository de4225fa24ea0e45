"""The novaglide service on a real core (SQLite and PostgreSQL) with a fake 60 Hz clock."""

import json

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet import reactor, task

from gamed.core.config import set_option
from gamed.core.testing import FakeChannel, connect
from gamed.novaglide.rules import Arena
from gamed.novaglide.service import NovaConnection, NovaglideGame


async def until(predicate, timeout=10.0):
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("timed out")
        await task.deferLater(reactor, 0.005, lambda: None)
        waited += 0.005


def make_game(core, **novaglide):
    for key, value in novaglide.items():
        core.config = set_option(core.config, "novaglide", key, value)
    clock = task.Clock()
    game = NovaglideGame(core, core.config.novaglide, clock)
    game.startService()
    return game, clock


class Player:
    def __init__(self, game, peer="127.0.0.1:1"):
        self.handler = NovaConnection(game)
        self.channel = connect(self.handler, FakeChannel(peer))

    def send(self, flag, data):
        self.handler.text_received(json.dumps({"time": "2026-11-22T10:00:00", "sender": "x",
                                               "flag": flag, "data": data}))

    async def reply(self, flag, data, want):
        self.send(flag, data)
        await until(lambda: any(m.get("flag") == want for m in self.channel.sent))
        found = [m for m in self.channel.sent if m.get("flag") == want][-1]
        self.channel.take()
        return found

    async def login(self, name, password="pw"):
        return await self.reply("log_in_data", [name, password], "change_of_status")

    def states(self):
        return [m for m in self.channel.sent if m.get("flag") == "game_state_1"]


async def matched(game, clock, names=("ann", "ben")):
    one, two = Player(game), Player(game)
    await one.login(names[0])
    await two.login(names[1])
    assert (await one.reply("queued_solo", ["no_data"], "Waiting_for_opponent"))
    await until(lambda: game.queue.entries)
    await two.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.matches)
    return one, two


@pytest_twisted.ensureDeferred
async def test_login_register_known_and_wrong(core):
    game, _ = make_game(core)
    player = Player(game)
    first = await player.login("Zoe", "secret")
    assert first["data"][:2] == ["online", "registering new user"] and first["sender"] == "server"
    again = Player(game)
    wrong = await again.login("zoe", "nope")
    assert wrong["data"][0] == "waiting_for_approval" and wrong["data"][2] == "unknown"
    known = await again.login("zoe", "secret")
    assert known["data"] == ["online", "known user", first["data"][2]]
    # the first connection was replaced by the second login of the same account
    assert player.channel.closed
    error = await again.reply("log_in_data", ["zoe", "secret"], "error")
    assert error["data"][0] == "already_logged_in"


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_requests_before_login_and_bad_packets(core):
    game, _ = make_game(core)
    player = Player(game)
    for flag in ("queued_solo", "get_elo", "ingame", "get_challengers"):
        reply = await player.reply(flag, ["no_data"], "error")
        assert reply["data"][0] == "not_logged_in"
    reply = await player.reply("log_in_data", ["only-a-name"], "change_of_status")
    assert reply["data"][0] == "waiting_for_approval"
    assert (await player.reply("teleport", [], "error"))["data"][0] == "unknown_flag"
    assert (await player.reply("get_elo", "x", "error"))["data"][0] == "bad_data"
    player.handler.text_received("{oops")
    assert player.channel.take()[0]["flag"] == "error"
    status = await player.reply("online", ["no_data"], "change_of_status")
    assert status["data"][0] == "unknown"


@pytest_twisted.ensureDeferred
async def test_queue_match_states_and_inputs_on_the_next_tick(core):
    game, clock = make_game(core)
    one, two = await matched(game, clock)
    first = one.states()[-1]
    assert first["player_id"] == 1 and first["data"][0] == 1 and len(first["data"]) == 23
    assert two.states()[-1]["player_id"] == 2 and two.states()[-1]["data"][4:6] == ["ann", "ben"]
    one.channel.take()
    one.send("ingame", [[640, 360], ["d"], "wsad"])
    assert one.channel.sent == []  # applied on the next tick, no reply
    clock.advance(1 / 60)
    state = one.states()[-1]["data"]
    assert state[6] == pytest.approx(100 + 500 / 60, abs=0.01) and state[1] < 300
    status = await one.reply("ingame_status_probe", [], "error")
    assert status["data"][0] == "unknown_flag"
    assert (await one.reply("ingame", [[1, 2]], "error"))["data"][0] == "bad_input"
    assert (await one.reply("queued_solo", ["no_data"], "error"))["data"][0] == "already_in_match"
    status = await one.reply("online", ["no_data"], "change_of_status")
    assert status["data"][0] == "ingame"


@pytest_twisted.ensureDeferred
async def test_the_result_is_committed_before_the_end_packet(core):
    game, clock = make_game(core, match_seconds=1.0)
    one, two = await matched(game, clock)
    match = game.matches[0]
    match.arena.score[1] = 1  # player 1 leads when the clock runs out
    seen_in_store = []
    real_announce = game.announce

    def announce(recorded, match, winner):
        history = core.ratings.history(match.accounts[1].id, "novaglide")
        history.addCallback(seen_in_store.append)
        return history.addCallback(lambda _: real_announce(recorded, match, winner))

    game.announce = announce
    for _ in range(61):
        clock.advance(1 / 60)
    await until(lambda: any(m.get("flag") == "end_game_state_1" for m in one.channel.sent))
    end = [m for m in one.channel.sent if m["flag"] == "end_game_state_1"][0]
    summary, winner = end["data"]
    assert winner == "ann" and summary["ann"]["elo"] == 1020 and summary["ben"]["elo"] == 980
    assert summary["ann"]["goals"] == 0 and "possession_time" in summary["ben"]
    assert seen_in_store and seen_in_store[0][0].outcome == "win"
    assert not game.matches and not game.match_of
    history = await two.reply("get_match_history", ["ben"], "match_history")
    [row] = history["data"][0]
    assert row[0] == "ann" and row[3] == "loss" and row[4] == -20
    assert (await two.reply("get_winrate", ["ann"], "winrate"))["data"] == [100.0]
    elo = await two.reply("get_elo", ["ann"], "client_elo")
    assert elo["data"][0] == 1020 and elo["data"][1][0] == ["ann", 1020]


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_rejoin_within_the_grace_then_forfeit_after_it(core):
    game, clock = make_game(core, rejoin_grace=15.0)
    one, two = await matched(game, clock)
    one.handler.connection_lost("gone")
    clock.advance(5.0)
    back = Player(game)
    await back.login("ann")
    clock.advance(1 / 60)
    assert back.states() and back.states()[-1]["player_id"] == 1
    assert game.matches  # same match, still running
    back.handler.connection_lost("gone again")
    clock.advance(15.1)
    await until(lambda: any(m.get("flag") == "end_game_state_1" for m in two.channel.sent))
    end = [m for m in two.channel.sent if m["flag"] == "end_game_state_1"][0]
    assert end["data"][1] == "ben"
    rows = await core.ratings.matches(game="novaglide")
    assert rows[0]["reason"] == "forfeit"


@pytest_twisted.ensureDeferred
async def test_both_players_gone_past_the_grace_abandon_the_match_unrated(core):
    game, clock = make_game(core, rejoin_grace=15.0)
    one, two = await matched(game, clock)
    one.handler.connection_lost("gone")
    clock.advance(1.0)
    two.handler.connection_lost("gone")  # a second later: not a win for ben, who left too
    for _ in range(15):
        clock.advance(1.0)
    await until(lambda: not game.recording and not game.matches)
    rows = await core.ratings.matches(game="novaglide")
    assert rows[0]["reason"] == "abandoned" and not rows[0]["ranked"]
    assert [p["outcome"] for p in rows[0]["players"]] == ["draw", "draw"]
    assert all(p["rating_after"] == p["rating_before"] for p in rows[0]["players"])
    assert not game.match_of  # both may queue again


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_disconnected_player_leaves_the_queue_and_never_plays_itself(core):
    game, clock = make_game(core)
    one = Player(game)
    await one.login("solo")
    await one.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.queue.entries)
    await one.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    clock.advance(1.0)
    assert not game.matches and len(game.queue) == 1
    one.handler.connection_lost("gone")
    assert len(game.queue) == 0


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_drain_records_running_matches_as_aborted_without_rating_change(core):
    game, clock = make_game(core)
    one, two = await matched(game, clock)
    await game.stopService()
    end = [m for m in one.channel.sent if m.get("flag") == "end_game_state_1"][0]
    assert end["data"][1] is None
    assert any(m.get("data", [None])[0] == "server_closing" for m in two.channel.sent)
    rows = await core.ratings.matches(game="novaglide")
    assert rows[0]["reason"] == "aborted" and not rows[0]["ranked"]
    assert (await core.ratings.get_rating(game.online and 0 or 1, "novaglide")).rating == 1000
    assert one.channel.closed and two.channel.closed


@pytest.mark.sqlite_only
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.sampled_from(["ingame", "get_elo", "queued_solo", "online", "game_history", "nope",
                     "get_challengers", "log_in_data"]),
    st.one_of(st.none(), st.integers(), st.lists(st.one_of(
        st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)), max_size=3))),
    max_size=12))
def test_any_packet_gets_a_server_packet_and_breaks_nothing(core, packets):
    game, clock = make_game(core)
    player = Player(game)
    for flag, data in packets:
        before = len(player.channel.sent)
        player.handler.text_received(json.dumps({"flag": flag, "data": data}))
        for message in player.channel.sent[before:]:
            assert message["sender"] == "server" and isinstance(message["data"], list)
    clock.advance(1.0)


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_result_that_cannot_be_saved_frees_the_players(core, monkeypatch):
    from twisted.internet import defer

    game, clock = make_game(core, match_seconds=0.5)
    one, two = await matched(game, clock)
    monkeypatch.setattr(core.ratings, "record_match",
                        lambda result: defer.fail(RuntimeError("disk full")))
    game.matches[0].arena.score[2] = 1  # no golden goal: the clock ends it
    for _ in range(40):
        clock.advance(1 / 60)
    for _ in range(3):
        clock.advance(1.5)  # the retries
    await until(lambda: not game.match_of)
    errors = [m for m in one.channel.sent if m.get("flag") == "error"]
    assert errors and errors[-1]["data"][0] == "result_not_saved"
    assert not any(m.get("flag") == "end_game_state_1" for m in one.channel.sent)
    assert (await one.reply("queued_solo", ["no_data"], "Waiting_for_opponent"))


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_client_back_online_leaves_the_queue(core):
    game, clock = make_game(core)
    one = Player(game)
    await one.login("quitter")
    await one.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.queue.entries)
    status = await one.reply("waiting_for_opponent", ["no_data"], "change_of_status")
    assert status["data"][0] == "waiting_for_opponent"  # still queued
    status = await one.reply("online", ["no_data"], "change_of_status")
    assert status["data"][0] == "online" and len(game.queue) == 0


def histogram(game, name):
    """{bucket upper bound: cumulative count} of one of the game's histograms."""
    samples = game.core.metrics.registry.get_sample_value
    bounds = {"tick_lateness_seconds": game.tick_lateness,
              "tick_seconds": game.tick_seconds}[name]
    full = "gamed_novaglide_%s_bucket" % name
    return {bound: samples(full, {"le": "+Inf" if bound == float("inf") else str(bound)})
            for bound in bounds._upper_bounds}


@pytest.mark.sqlite_only
def test_tick_lateness_is_measured_against_the_60_hz_schedule(core):
    game, clock = make_game(core)
    try:
        clock.advance(1 / 60)  # on time
        clock.advance(1 / 60 + 0.005)  # 5 ms late, same frame
        clock.advance(2 / 60)  # a frame skipped: its step runs a frame and 5 ms late
        lateness = histogram(game, "tick_lateness_seconds")
        assert lateness[0.004] == 1 and lateness[0.008] == lateness[1 / 60] == 2
        assert lateness[2 / 60] == 3
        assert game.core.metrics.registry.get_sample_value(
            "gamed_novaglide_late_ticks_total") == 1
        assert histogram(game, "tick_seconds")[float("inf")] == 3
    finally:
        game.stopService()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_late_tick_steps_the_missed_frames_at_most_five_and_sends_one_state(core):
    game, clock = make_game(core)
    one, two = await matched(game, clock)
    arena = game.matches[0].arena
    one.channel.take()
    one.send("ingame", [[640, 360], ["d"], "wsad"])
    frame, x = arena.frame, arena.discs[1].x
    clock.advance(3 / 60)  # one call, three frames due
    assert arena.frame == frame + 3
    assert arena.discs[1].x == pytest.approx(x + 3 * 500 / 60)
    assert len(one.states()) == 1  # the latest state, not three stale ones
    clock.advance(10 / 60)  # a long stall: the game does not race to catch up
    assert arena.frame == frame + 3 + 5
    assert len(one.states()) == 2


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_the_status_ingame_is_a_status_packet_not_input(core):
    game, clock = make_game(core)
    one, two = await matched(game, clock)
    status = await one.reply("ingame", ["no_data"], "change_of_status")
    assert status["data"][0] == "ingame"
    lone = Player(game)
    await lone.login("cid")
    status = await lone.reply("ingame", ["no_data"], "change_of_status")
    assert status["data"][0] == "online"


@pytest_twisted.ensureDeferred
async def test_challengers_are_the_rated_players_best_first_without_you(core):
    game, clock = make_game(core, match_seconds=0.1, challengers_rows=2)
    one, two = await matched(game, clock)
    one.send("ingame", [[640, 360], ["d"], "wsad"])
    game.matches[0].arena.score[1] = 1  # ann leads when the clock runs out
    for _ in range(8):
        clock.advance(1 / 60)
    await until(lambda: not game.recording and not game.matches)
    cid = Player(game)
    await cid.login("cid")
    rows = (await cid.reply("get_challengers", ["no_data"], "challengers"))["data"][0]
    assert rows == [["ann", 100.0, 1020.0], ["ben", 0.0, 980.0]]
    rows = (await one.reply("get_challengers", ["no_data"], "challengers"))["data"][0]
    assert rows == [["ben", 0.0, 980.0]]


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_second_login_takes_the_account_but_not_its_queue_place(core):
    game, clock = make_game(core)
    first = Player(game)
    await first.login("ann")
    await first.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    await until(lambda: game.queue.entries)
    second = Player(game)
    await second.login("ann")
    assert first.channel.closed and not game.queue.entries
    ben = Player(game)
    await ben.login("ben")
    await ben.reply("queued_solo", ["no_data"], "Waiting_for_opponent")
    clock.advance(1.0)
    assert not game.matches and not second.states()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_match_that_fails_is_aborted_and_the_others_play_on(core):
    game, clock = make_game(core)
    one, two = await matched(game, clock)
    three, four = await matched(game, clock, names=("cid", "dan"))
    await until(lambda: len(game.matches) == 2)
    broken, healthy = game.matches

    class BrokenArena(Arena):
        def step(self, inputs):
            raise RuntimeError("a bug in the rules")

    broken.arena = BrokenArena()
    clock.advance(1 / 60)
    await until(lambda: not game.recording)
    assert game.matches == [healthy] and game.ticker.running
    ends = [m for m in one.channel.sent if m["flag"] == "end_game_state_1"]
    assert ends and ends[0]["data"][1] is None  # aborted: no winner, nothing rated
    three.channel.take()
    clock.advance(1 / 60)
    assert three.states()
    rows = await core.ratings.matches(game="novaglide")
    assert rows[0]["reason"] == "aborted" and not rows[0]["ranked"]


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_takeover_leaves_one_presence_that_goes_with_the_last_connection(core):
    game, clock = make_game(core)
    first = Player(game)
    await first.login("ann")
    account_id = first.handler.account.id
    second = Player(game)
    await second.login("ann")
    first.handler.connection_lost("replaced")
    assert core.presence.is_online(account_id, "novaglide")
    second.handler.connection_lost("gone")
    assert not core.presence.is_online(account_id)
