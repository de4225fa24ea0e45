"""The Block Attack service over a simulated network that drops, duplicates and reorders."""

import json
import random

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor, task

from gamed.blockattack.client import BlockattackClient
from gamed.blockattack.rules import empty_board
from gamed.blockattack.service import BlockattackService
from gamed.core.config import set_option


async def until(predicate, clock=None, timeout=10.0, step=0.05, busy=lambda: False):
    """Advance the fake clock until predicate(); while busy() (real work in flight, such
    as an account read from the database) only real time passes, up to 60 s."""
    waited = 0.0
    give_up = reactor.seconds() + 60.0
    while not predicate():
        if waited > timeout or reactor.seconds() > give_up:
            raise AssertionError("timed out")
        if busy():
            await task.deferLater(reactor, 0.01, lambda: None)
            continue
        if clock is not None:
            clock.advance(step)
        await task.deferLater(reactor, 0.002, lambda: None)
        waited += step if clock is not None else 0.002


class Network:
    """Carries datagrams between clients and the server with loss, copies and delays."""

    def __init__(self, server, clock, loss=0.0, duplicate=0.0, max_delay=0.0, seed=1):
        self.server = server
        self.clock = clock
        self.random = random.Random(seed)
        self.loss, self.duplicate, self.max_delay = loss, duplicate, max_delay
        self.clients = {}  # address -> BlockattackClient
        self.sent_to = {}  # address -> bytes the server sent there
        self.received_from = {}  # address -> bytes the server received from there
        server.transport = self

    def add(self, client_address, name, opponent):
        client = BlockattackClient(name, opponent,
                                   lambda data: self.to_server(data, client_address),
                                   self.clock)
        self.clients[client_address] = client
        return client

    def _carry(self, deliver):
        if self.random.random() < self.loss:
            return
        copies = 2 if self.random.random() < self.duplicate else 1
        for _ in range(copies):
            delay = self.random.uniform(0, self.max_delay)
            if delay:
                self.clock.callLater(delay, deliver)
            else:
                deliver()

    def to_server(self, data, address):
        self.received_from[address] = self.received_from.get(address, 0) + len(data)
        self._carry(lambda: self.server.datagramReceived(data, address))

    def write(self, data, address):  # the server's transport
        self.sent_to[address] = self.sent_to.get(address, 0) + len(data)
        client = self.clients.get(address)
        if client is not None:
            self._carry(lambda: client.received(data))


def make_service(core, **settings):
    for key, value in settings.items():
        core.config = set_option(core.config, "blockattack", key, value)
    clock = task.Clock()
    clock.advance(1_800_000_000)  # a realistic epoch, for millisecond timestamps
    service = BlockattackService(core, core.config.blockattack, clock, new_seed=lambda: 1234,
                                 grace_period=core.config.shutdown.grace_period)
    service.startService()
    return service, clock


A, B, C = ("10.0.0.1", 4001), ("10.0.0.2", 4002), ("10.0.0.3", 4003)


async def paired(service, clock, network, names=("ann", "ben")):
    a = network.add(A, names[0], names[1])
    b = network.add(B, names[1], names[0])
    a.connect()
    b.connect()

    def started():
        if a.game_name is None:
            a.connect()
        if b.game_name is None:
            b.connect()
        return a.game_name and b.game_name

    await until(started, clock, step=0.3, busy=lambda: bool(service.pairing))
    return a, b


def dropped(service, reason):
    return service.dropped.labels(reason)._value.get()


@pytest_twisted.ensureDeferred
async def test_pairing_game_start_and_flux(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    assert a.game_name == b.game_name
    assert a.start["self"] == "ann" and a.start["opponent"] == "ben"
    assert a.start["next_block"] == b.start["next_block"] in "IJLOSTZ"
    a.board = empty_board()
    a.board[19][0] = 3
    a.score = 120
    a.flux()
    b.flux()
    assert b.state["opponent_blocks"][19][0] == 3 and b.state["opponent_score"] == 120
    assert a.state["user_score"] == 120


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_game_start_repeats_until_the_first_flux_and_connect_is_idempotent(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    starts = network.sent_to[A]
    clock.advance(2.0)
    assert network.sent_to[A] > starts  # repeated
    a.flux()
    b.flux()
    after = network.sent_to[A]
    clock.advance(3.0)
    assert network.sent_to[A] == after  # no more game_start
    game_name = a.game_name
    a.connect()  # a late copy of connect: same game, nothing new
    assert a.game_name == game_name and len(service.games) == 1


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_lone_connects_wait_and_never_amplify(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    c = network.add(C, "cid", "nobody")
    c.connect()
    c.connect()
    assert network.sent_to.get(C, 0) <= network.received_from[C]
    for junk in (b"\xff", b"{", b"[]", b"42", b'{"command": 5}', b'{"command": "connect"}',
                 b'{"command": "game_flux", "game_name": "nope"}', b"x" * 9000):
        network.to_server(junk, C)
    assert network.sent_to.get(C, 0) <= network.received_from[C]
    for reason in ("malformed", "unknown_command", "bad_connect", "unknown_game", "oversize"):
        assert dropped(service, reason) >= 1, reason
    assert not service.games


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_stale_duplicate_and_spoofed_datagrams_are_dropped_and_counted(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    a.score = 50
    a.flux()
    stamp = a.last_sent
    stale = json.dumps({"timestamp": stamp, "command": "game_flux", "game_name": a.game_name,
                        "user_blocks": empty_board(), "user_score": 999}).encode()
    network.to_server(stale, A)  # a replay with the same timestamp
    older = stale.replace(str(stamp).encode(), str(stamp - 5).encode())
    network.to_server(older, A)
    assert dropped(service, "stale") == 2
    assert service.games[a.game_name].duel.sides["ann"].score == 50
    spoofed = stale.replace(str(stamp).encode(), str(stamp + 10).encode())
    network.to_server(spoofed, C)  # the right game, from a stranger's address
    assert dropped(service, "wrong_address") == 1
    assert service.games[a.game_name].duel.sides["ann"].score == 50
    assert C not in network.sent_to  # never answered


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_bad_reports_get_small_errors_and_change_nothing(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    a.board = [[9] * 10] * 20
    a.flux()
    assert a.errors[-1]["error"] == "bad_board"
    a.board = empty_board()
    a.flux(power_used="I")
    assert a.errors[-1]["error"] == "power_unavailable"
    assert service.games[a.game_name].duel.sides["ann"].board == empty_board()


@pytest.mark.parametrize("loss, duplicate, delay", [(0.0, 0.0, 0.0), (0.3, 0.3, 0.4)])
@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_powers_apply_exactly_once_on_a_lossy_network(core, loss, duplicate, delay):
    service, clock = make_service(core, power_every=100)
    network = Network(service, clock, loss, duplicate, delay, seed=7)
    a, b = await paired(service, clock, network)
    game = service.games[a.game_name]
    ann = game.duel.sides["ann"]
    a.score = 300  # earns I, R, S
    while len(ann.powers_available) < 3:
        a.flux()
        clock.advance(0.2)
    for power in ("I", "R", {"power": "S", "shape": "O"}):
        letter = power if isinstance(power, str) else power["power"]
        while letter in ann.powers_available:  # resend until one copy gets through
            a.flux(power_used=power)
            b.flux()
            clock.advance(0.2)

    def ben_has_all_three():
        b.flux()  # power_applied rides on the replies to ben's reports
        return len(b.powers_seen) == 3

    await until(ben_has_all_three, clock, step=0.2)
    for _ in range(20):  # more traffic, more copies: still three powers
        b.flux()
        a.flux()
        clock.advance(0.2)
    assert sorted(e["power"] for e in b.powers_seen.values()) == ["I", "R", "S"]
    assert game.duel.power_ids == 3
    assert game.duel.sides["ben"].incoming == {}  # all acknowledged
    piece = game.duel.next_piece("ben")
    assert piece.shape == "O" and piece.inverted  # I then R then S on the same piece


@pytest.mark.parametrize("loss, duplicate, delay", [(0.0, 0.0, 0.0), (0.35, 0.3, 0.5)])
@pytest_twisted.ensureDeferred
async def test_a_whole_game_ends_the_same_way_on_a_lossy_network(core, loss, duplicate,
                                                                 delay):
    service, clock = make_service(core, game_seconds=20.0, silence_timeout=30.0)
    network = Network(service, clock, loss, duplicate, delay, seed=3)
    a, b = await paired(service, clock, network)
    for step in range(240):  # 24 s of play at 10 reports per second
        a.score, b.score = step * 10, step * 7
        a.flux()
        b.flux()
        clock.advance(0.1)
        await task.deferLater(reactor, 0, lambda: None)
    await until(lambda: a.end is not None and b.end is not None, clock, step=0.5)
    for end in (a.end, b.end):
        assert end["winner"] == "ann" and end["reason"] == "time"
    rows = await core.ratings.matches(game="blockattack")
    assert len(rows) == 1 and rows[0]["reason"] == "time"
    outcome = {p["name"]: p["outcome"] for p in rows[0]["players"]}
    assert outcome == {"ann": "win", "ben": "loss"}
    # acknowledged: the game is forgotten after the acks (or the linger time)
    await until(lambda: not service.games, clock, step=0.5, timeout=30)


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_the_result_is_committed_before_game_end_and_top_out_ends_it(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    seen = []
    real = network.write

    def spy(data, address):
        if b'"game_end"' in data and not seen:
            seen.append(core.ratings.matches(game="blockattack"))
        real(data, address)

    network.write = spy
    b.board = empty_board()
    b.board[0][5] = 2  # topped out
    b.flux()
    await until(lambda: a.end is not None, clock)
    rows = await seen[0]
    assert rows and rows[0]["reason"] == "top_out"
    assert a.end["winner"] == "ann" and a.end["elo"]["ann"] == 1016.0


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_silence_forfeit_and_drain(core):
    service, clock = make_service(core, silence_timeout=5.0)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    b.flux()  # ben shows up once, then goes silent
    for _ in range(30):
        a.flux()
        clock.advance(0.25)
    await until(lambda: a.end is not None, clock)
    assert a.end["reason"] == "timeout" and a.end["winner"] == "ann"
    c = network.add(C, "cid", "dan")
    d = network.add(("10.0.0.4", 4004), "dan", "cid")
    c.connect()
    d.connect()
    await until(lambda: c.game_name and d.game_name, clock)
    await service.stopService()
    await until(lambda: c.end is not None, clock)
    assert c.end["reason"] == "server_shutdown" and c.end["winner"] is None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
ROWS = st.lists(st.integers(0, 7), min_size=10, max_size=10)
BOARDS = st.one_of(st.just(empty_board()),
                   st.lists(ROWS, min_size=19, max_size=19).map(lambda rows: [[0] * 10] + rows),
                   st.lists(st.lists(st.integers(-1, 8), min_size=10, max_size=10),
                            min_size=20, max_size=20))


def mostly(valid):
    """Four times in five a valid value, else any JSON."""
    return st.tuples(st.integers(0, 4), valid, JSON).map(lambda t: t[1] if t[0] else t[2])


class Newer(int):
    """A timestamp relative to the last one the server applied, filled in at send time."""


def datagrams(game_name):
    """Anything a network can carry: bytes, JSON, and near-valid datagrams for the game
    (no forfeit: the game should go on; as dicts: encoded when sent, after their `Newer` timestamp is made absolute)."""
    near = st.fixed_dictionaries({
        "command": st.sampled_from(["game_flux"] * 8 + ["connect", "ack", "nope"]),
        "timestamp": mostly(st.integers(-3, 30).map(Newer)),
        "game_name": mostly(st.just(game_name)),
        "self": st.just("cid"),
        "opponent": mostly(st.just("ann")),
        "user_blocks": mostly(BOARDS),
        "user_score": mostly(st.integers(-5, 3000)),
        "pieces_placed": mostly(st.integers(-1, 50)),
        "power_used": mostly(st.one_of(
            st.sampled_from([None, None, None, "I", "R", "S", "N"]),
            st.fixed_dictionaries({"power": st.sampled_from("SN"), "shape": st.sampled_from("IOZ"),
                                   "direction": st.just("right")}))),
        "power_ack": mostly(st.lists(st.integers(0, 5), max_size=3)),
        "ack": st.sampled_from(["game_end", "power_applied", "x"]),
        "ids": mostly(st.lists(st.integers(0, 5), max_size=3)),
    })
    near = near.flatmap(lambda d: st.lists(st.sampled_from(sorted(d)), max_size=2).map(
        lambda drop: {k: v for k, v in d.items() if k not in drop or k == "command"}))
    return st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()),
                     near, near, near, near)


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_any_datagrams_from_a_player_or_a_stranger_keep_the_game_sound(core):
    service, clock = make_service(core, power_every=100, silence_timeout=1000.0,
                                  game_seconds=1000.0)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    a.flux()
    b.flux()
    game = service.games[a.game_name]
    ann = game.duel.sides["ann"]
    network.add(C, "cid", "nobody")

    def encoded(payload):
        if isinstance(payload, bytes):
            return payload
        stamp = payload.get("timestamp")
        if isinstance(stamp, Newer):
            payload = dict(payload, timestamp=game.last_timestamp["ann"] + int(stamp))
        return json.dumps(payload).encode()

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from([A, A, C]), datagrams(a.game_name)),
                    max_size=6))
    def check(sent):
        before = (ann.score, ann.pieces_placed, game.last_timestamp["ann"])
        for address, payload in sent:
            network.to_server(encoded(payload), address)
            clock.advance(0.01)
        assert dropped(service, "internal") == 0
        assert network.sent_to.get(C, 0) <= network.received_from.get(C, 0)  # no amplification
        assert service.games.get(a.game_name, game) is game
        assert game.addresses == {"ann": A, "ben": B}  # nobody rebinds a player
        after = (ann.score, ann.pieces_placed, game.last_timestamp["ann"])
        assert all(x <= y for x, y in zip(before, after))  # nothing goes back
        assert all(isinstance(v, int) and 0 <= v <= 7 for row in ann.board for v in row)
        assert len(ann.powers_available) + game.duel.power_ids <= ann.powers_earned

    check()
    for pending in list(service.recording):
        await pending


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_drain_resends_game_end_until_both_ack_over_a_lossy_network(core):
    core.config = set_option(core.config, "shutdown", "grace_period", 30.0)
    service, clock = make_service(core)
    network = Network(service, clock, loss=0.4, seed=5)
    a, b = await paired(service, clock, network)
    game = service.games[a.game_name]
    assert core.presence.is_online(game.accounts["ann"].id, "blockattack")

    def both_playing():
        a.flux()
        b.flux()
        return game.flux_seen == {"ann", "ben"}

    await until(both_playing, clock, step=0.1)
    started = clock.seconds()
    stopped = []
    service.stopService().addBoth(stopped.append)
    service.datagramReceived(json.dumps({"command": "connect", "self": "cid",
                                         "opponent": "dan"}).encode(), C)
    await until(lambda: stopped, clock, timeout=40.0, step=0.1)
    assert a.end["reason"] == b.end["reason"] == "server_shutdown"
    assert game.end_acked == {"ann", "ben"}
    assert clock.seconds() - started < 30.0  # done once both acked, not at the deadline
    assert dropped(service, "server_closing") == 1
    assert not service.games and not core.presence.is_online(game.accounts["ann"].id)


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_drain_gives_up_on_a_silent_player_after_the_grace_period(core):
    core.config = set_option(core.config, "shutdown", "grace_period", 3.0)
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    a.flux()
    b.flux()
    del network.clients[B]  # ben is gone: nothing reaches him, he never acks
    ends_to_ben = datagrams_to(network, B, "game_end")
    started = clock.seconds()
    stopped = []
    service.stopService().addBoth(stopped.append)
    await until(lambda: stopped, clock, timeout=10.0, step=0.1)
    assert 3.0 <= clock.seconds() - started < 3.5
    assert a.end["reason"] == "server_shutdown"
    assert len(ends_to_ben) >= 3  # game_end was sent to ben, and resent every second
    rows = await core.ratings.matches(game="blockattack")
    assert rows[0]["reason"] == "server_shutdown" and not rows[0]["ranked"]


def datagrams_to(network, address, command):
    """Record every datagram of `command` the server sends to `address`."""
    seen = []
    real_write = network.write

    def write(data, to):
        if to == address and ('"command":"%s"' % command).encode() in data:
            seen.append(data)
        real_write(data, to)

    network.write = write
    return seen


def connect_from(service, address, me, opponent):
    data = json.dumps({"command": "connect", "self": me, "opponent": opponent}).encode()
    service.datagramReceived(data, address)
    return len(data)


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_player_who_never_reports_makes_the_game_a_no_show_unrated(core):
    service, clock = make_service(core, silence_timeout=15.0)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    for _ in range(70):
        a.flux()
        clock.advance(0.25)
    await until(lambda: a.end is not None, clock)
    assert a.end["reason"] == "no_show" and a.end["winner"] is None
    rows = await core.ratings.matches(game="blockattack")
    assert rows[0]["reason"] == "no_show" and not rows[0]["ranked"]


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_forged_pair_gets_its_victims_little_and_nobody_takes_a_waiting_seat(core):
    service, clock = make_service(core, silence_timeout=15.0)
    network = Network(service, clock)
    victim, other = ("192.0.2.7", 5000), ("192.0.2.8", 5000)
    starts, ends = datagrams_to(network, victim, "game_start"), datagrams_to(network, victim,
                                                                             "game_end")
    received = connect_from(service, victim, "vic", "tor")
    # a third party's connect for the waiting name from elsewhere is refused
    connect_from(service, C, "vic", "tor")
    assert dropped(service, "name_waiting") == 1
    received += connect_from(service, other, "tor", "vic")
    await until(lambda: service.games, clock, step=0.1)
    for _ in range(200):  # neither ever reports: the game ends no_show at 15 s
        clock.advance(0.25)
        await task.deferLater(reactor, 0, lambda: None)
    await until(lambda: not service.games, clock, timeout=40.0)
    # game_start backs off (1, 2, 4, 8 s) and game_end is sent once, not repeated
    assert 3 <= len(starts) <= 5 and len(ends) == 1
    sent = network.sent_to[victim]
    assert sent <= 15 * received, (sent, received)  # 1276 bytes for 112 measured


@pytest.mark.sqlite_only
def test_waiting_players_are_capped_and_forgotten_after_the_connect_timeout(core):
    service, clock = make_service(core, max_waiting=3, connect_timeout=10.0)
    Network(service, clock)
    for n in range(4):
        connect_from(service, ("192.0.2.%d" % n, 1), "p%d" % n, "nobody")
    assert len(service.waiting) == 3 and dropped(service, "busy") == 1
    clock.advance(10.5)
    assert not service.waiting
    service.stopService()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_repeated_connects_from_a_bound_player_are_answered_once_a_second(core):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    starts = datagrams_to(network, A, "game_start")
    for _ in range(20):
        a.connect()
        clock.advance(0.01)
    assert len(starts) == 1


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_result_is_retried_and_if_it_cannot_be_stored_game_end_says_so(core,
                                                                                monkeypatch):
    from twisted.internet import defer

    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    attempts = []

    def failing(result):
        attempts.append(result)
        return defer.fail(RuntimeError("database down"))

    monkeypatch.setattr(core.ratings, "record_match", failing)
    a.flux()
    b.board = empty_board()
    b.board[0][0] = 1
    b.flux()  # tops out: the game is over
    await until(lambda: a.end is not None, clock, step=0.5)
    assert len(attempts) == 3
    assert a.end["saved"] is False and a.end["elo"] is None and a.end["reason"] == "top_out"


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_slow_recording_is_waited_for_never_stored_twice(core, monkeypatch):
    from twisted.internet import defer

    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    real = core.ratings.record_match
    calls, slow = [], defer.Deferred()

    def slow_write(result):
        calls.append(result)
        return slow

    monkeypatch.setattr(core.ratings, "record_match", slow_write)
    service.datagramReceived(json.dumps({"command": "forfeit", "timestamp": a.last_sent + 1,
                                         "game_name": a.game_name}).encode(), A)
    for _ in range(120):  # two minutes of a database that takes its time
        clock.advance(1.0)
    assert b.end is None and len(calls) == 1  # nobody told yet, and no second write
    real(calls[0]).chainDeferred(slow)
    await until(lambda: b.end is not None, clock, step=1.0)
    assert b.end["saved"] is True and b.end["winner"] == "ben"
    rows = await core.ratings.matches(game="blockattack")
    assert len(rows) == 1


@pytest.mark.sqlite_only
def test_a_waiting_client_back_on_a_new_port_keeps_its_seat_and_small_connects_are_answered(
        core):
    service, clock = make_service(core)
    network = Network(service, clock)
    waits = datagrams_to(network, ("192.0.2.1", 2), "waiting")
    size = connect_from(service, ("192.0.2.1", 1), "ann", "ben")
    assert size < 64  # a seed-shaped connect, no timestamp
    connect_from(service, ("192.0.2.1", 2), "ann", "ben")  # restarted: same host, new port
    assert service.waiting["ann"].address == ("192.0.2.1", 2)
    assert len(waits) == 1 and len(waits[0]) <= size  # answered, no bigger than asked
    connect_from(service, ("192.0.2.9", 1), "ann", "ben")  # another host: refused
    assert dropped(service, "name_waiting") == 1
    service.stopService()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_write_whose_acknowledgement_is_lost_is_retried_and_counted_once(core,
                                                                               monkeypatch):
    service, clock = make_service(core)
    network = Network(service, clock)
    a, b = await paired(service, clock, network)
    real = core.ratings.record_match
    calls = []

    def committed_then_lost(result):
        calls.append(result)
        d = real(result)
        if len(calls) == 1:  # it is stored, but the answer never comes back
            d.addCallback(lambda _: (_ for _ in ()).throw(ConnectionError("lost")))
        return d

    monkeypatch.setattr(core.ratings, "record_match", committed_then_lost)
    service.datagramReceived(json.dumps({"command": "forfeit", "timestamp": a.last_sent + 1,
                                         "game_name": a.game_name}).encode(), A)
    await until(lambda: b.end is not None, clock, step=0.5)
    assert len(calls) == 2 and b.end["saved"] is True
    assert b.end["elo"] == {"ann": 984.0, "ben": 1016.0}  # one rating change, not two
    assert len(await core.ratings.matches(game="blockattack")) == 1
