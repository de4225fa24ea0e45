"""The uttt handler on a synchronous fake Core: any message at all gets well-formed replies.

Hypothesis throws arbitrary frames (known and unknown types, any JSON data) at a logged-in
connection that has an open match, and checks that every reply has the protocol's shape,
that none is an internal error, that the connection stays up, and that the match only
ever changes through legal moves.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamed.core.testing import FakeChannel, connect
from gamed.uttt import rules
from gamed.uttt.connection import UtttConnection
from gamed.uttt.game import UtttGame

from .fakes import FakeStore, fake_core

KEYS = ("name", "pw", "id", "player", "user", "sub_x", "sub_y", "x", "y")
TYPES = ["login", "temp_session", "reconnect", "match_request", "move", "end_match",
         "match_states_request", "friend_request", "unfriend_request"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                    st.sampled_from(["0", "1", "2", "3", "a", "", "fuzz_a", "FUZZ_B", "x" * 40]),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
datas = st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
                  st.fixed_dictionaries({"id": st.sampled_from(["1", 1, "2", "x"])},
                                        optional={k: st.sampled_from([0, 1, 2, "0", "1", "2"])
                                                  for k in ("sub_x", "sub_y", "x", "y")}))
types_ = st.one_of(st.sampled_from(TYPES), st.text(max_size=12), st.none(), st.integers())
messages = st.one_of(
    st.fixed_dictionaries({"type": types_, "data": datas}),
    st.dictionaries(st.sampled_from(["type", "data", "id"]), values, max_size=3))


def setup():
    core = fake_core()
    game = UtttGame(core, FakeStore())
    game.startService()
    clients = []
    for name in ("fuzz_a", "fuzz_b"):
        handler = UtttConnection(game)
        channel = connect(handler, FakeChannel())
        handler.message_received({"type": "login", "data": {"name": name, "pw": "pw"}})
        clients.append((handler, channel))
    (a, channel_a), (b, _) = clients
    a.message_received({"type": "match_request", "data": {"player": "fuzz_b"}})
    assert game.matches, channel_a.sent
    channel_a.take()
    return game, a, channel_a


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=6))
def test_any_frames_get_well_formed_replies_and_never_an_internal_error(frames):
    game, handler, channel = setup()
    session = handler.session
    for message in frames:
        before = {m.id: m.board for m in game.matches.values()}
        handler.message_received(message)
        replies = channel.take()
        assert not channel.closed
        for reply in replies:
            assert set(reply) == {"type", "data"} and isinstance(reply["data"], dict), reply
            assert reply["data"].get("error") != "internal_error", (message, reply)
            if reply["type"].endswith("_response") or reply["type"] == "error":
                assert isinstance(reply["data"]["msg"], str), reply
        kind = message.get("type")
        if kind not in ("move", "end_match", "match_states_request"):
            assert replies, "no reply to %r" % (message,)
        for match in game.matches.values():  # a match changes only by one legal move
            old = before.get(match.id)
            if old is not None and match.board != old:
                assert match.board.moves == old.moves + 1
                assert rules.play(old, old.to_move, match.board.last_move) == match.board
        if handler.player is None or handler.player.name != "fuzz_a":
            handler.message_received({"type": "reconnect", "data": {"id": session}})
            channel.take()
            assert handler.player.name == "fuzz_a"


def test_text_frames_that_are_not_objects_get_error_frames():
    game, handler, channel = setup()
    for text in ("nope", "[1]", "3", "null", '"s"'):
        handler.text_received(text)
        [reply] = channel.take()
        assert reply["type"] == "error" and reply["data"]["success"] is False
        assert reply["data"]["error"] in ("malformed_json", "not_an_object")


# -- the same handler behind the JSON-lines adapter, on a StringTransport -------------------

import json  # noqa: E402

from twisted.internet import task  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from gamed.core.lines import JsonLinesFactory  # noqa: E402
from gamed.core.settings import StreamLimits  # noqa: E402
from gamed.core.transport import StreamEndpoint  # noqa: E402


def lines_connection(game, clock, **limits):
    endpoint = StreamEndpoint("uttt", "lines", lambda: UtttConnection(game),
                              StreamLimits(**limits), clock, game.core.metrics.service("uttt"))
    proto = JsonLinesFactory(endpoint).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def read(transport):
    out = [json.loads(line) for line in transport.value().decode().splitlines()]
    transport.clear()
    return out


def test_a_game_over_json_lines_with_crlf_and_split_packets():
    clock = task.Clock()
    game = UtttGame(fake_core(clock), FakeStore(), clock)
    game.startService()
    a, ta = lines_connection(game, clock)
    b, tb = lines_connection(game, clock)
    a.dataReceived(b'{"type": "temp_session", "data": {"name": "LineA"}}\r\n')
    b.dataReceived(b'{"type": "login", "data": {"name": "lineb", ')
    b.dataReceived(b'"pw": ""}}\n')
    assert read(ta)[0]["data"]["user"] == "linea"
    assert read(tb)[0]["data"]["registered"] is False
    a.dataReceived(b'{"type": "match_request", "data": {"player": "LINEB"}}\n')
    [update] = [m for m in read(tb) if m["type"] == "match_update"]
    match_id = update["data"]["id"]
    a.dataReceived(json.dumps({"type": "move", "data": {
        "id": match_id, "sub_x": "1", "sub_y": "1", "x": "0", "y": "2"}}).encode() + b"\n")
    for transport in (ta, tb):
        updates = [m for m in read(transport) if m["type"] == "match_update"]
        assert updates[-1]["data"]["match_state"]["active_player"] == "lineb"
    b.dataReceived(b'{"type": "move", "data": {"id": "%s", "sub_x": 1, "sub_y": 1, '
                   b'"x": 0, "y": 0}}\n' % match_id.encode())
    [refusal] = read(tb)
    assert refusal["type"] == "move_response" and refusal["data"]["error"] == "wrong_sub_board"


def test_idle_connections_are_closed_with_a_uttt_error_frame():
    clock = task.Clock()
    game = UtttGame(fake_core(clock), FakeStore(), clock)
    game.startService()
    proto, transport = lines_connection(game, clock, idle_timeout=30)
    proto.dataReceived(b'{"type": "temp_session", "data": {}}\n')
    read(transport)
    clock.advance(31)
    [error] = read(transport)
    assert error["type"] == "error" and error["data"]["error"] == "idle_timeout"
    assert transport.disconnecting
    from twisted.internet import error
    from twisted.python import failure

    proto.connectionLost(failure.Failure(error.ConnectionDone()))
    assert game.connections == {}


def test_requests_wait_for_the_open_matches_and_loading_is_retried():
    from twisted.internet import defer

    clock = task.Clock()
    store = FakeStore()
    attempts = []

    def flaky():
        attempts.append(clock.seconds())
        if len(attempts) == 1:
            return defer.fail(RuntimeError("database not up yet"))
        return defer.succeed([])

    store.open_matches = flaky
    game = UtttGame(fake_core(clock), store, clock)
    game.startService()
    handler = UtttConnection(game)
    channel = connect(handler, FakeChannel())
    handler.message_received({"type": "temp_session", "data": {"name": "early"}})
    assert channel.take() == [] and not game.loaded  # held, not refused
    clock.advance(5)
    assert attempts == [0, 5] and game.loaded
    assert channel.take()[0]["data"]["success"] is True
