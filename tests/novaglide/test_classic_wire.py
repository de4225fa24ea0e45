"""The classic wire's pure parts: safe unpickling, request shapes, reply shapes and sizes."""

import base64
import datetime
import os
import pickle
import pickletools
import subprocess
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from gamed.novaglide import classic_wire as wire

from .classic_client import pressed, request, scancode_wrapper_registered

#: opcodes that name or call a class: a reply must hold none of them
CLASS_OPCODES = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ",
                 "BUILD", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}


def read_all(data: bytes, max_request=4096):
    reader = wire.RequestReader(max_request)
    reader.feed(data)
    out = []
    while (item := reader.take()) is not None:
        out.append(item)
    return out, reader


# -- what the real client sends ---------------------------------------------------------------

def test_an_ingame_request_with_pygame_keys_becomes_the_json_handlers_input():
    with scancode_wrapper_registered() as wrapper:
        raw = request("ingame", [(640, 360), pressed(wrapper, "w", "d", "space"), "wsad"], 7)
    [loaded], _ = read_all(raw)
    assert type(loaded["data"][1]) is tuple and len(loaded["data"][1]) == 512
    checked = wire.check_request(loaded)
    assert checked.flag == "ingame"
    assert checked.data[0] == [640, 360] and checked.data[2] == "wsad"
    assert sorted(checked.data[1]) == ["d", "space", "w"]


def test_arrow_keys_and_dash_map_from_their_scancodes():
    with scancode_wrapper_registered() as wrapper:
        keys = pressed(wrapper, "up", "left", "lshift")
    assert sorted(wire.keys_from_scancodes(keys)) == ["left", "lshift", "up"]
    assert wire.keys_from_scancodes((False,) * 512) == []


def test_split_and_joined_sends_give_each_request_once():
    first, second = request("log_in_data", ["ann", "pw"]), request("online", ["no_data"], 1)
    reader = wire.RequestReader(4096)
    got = []
    stream = first + second
    for byte in range(len(stream)):  # one byte at a time
        reader.feed(stream[byte:byte + 1])
        while (item := reader.take()) is not None:
            got.append(item)
    assert [g["flag"] for g in got] == ["log_in_data", "online"]
    joined, reader = read_all(first + second)
    assert [g["flag"] for g in joined] == ["log_in_data", "online"] and not reader.buffer


def test_a_request_over_the_cap_is_refused():
    big = request("log_in_data", ["x" * 5000, "pw"])
    reader = wire.RequestReader(4096)
    reader.feed(big[:4095])
    assert reader.take() is None  # still incomplete and under the cap
    reader.feed(big[4095:])
    with pytest.raises(wire.RefusedRequest) as refused:
        reader.take()
    assert refused.value.code == "request_too_large"


# -- hostile pickles ------------------------------------------------------------------------------

class RunsShell:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ("touch %s" % self.path,))


class Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


class Spawns:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (subprocess.Popen, (["touch", self.path],))


def exploit_pickles(tmp_path):
    marker = str(tmp_path / "pwned")
    yield "os.system", pickle.dumps({"flag": "log_in_data", "data": [RunsShell(marker)]})
    yield "builtins.eval", pickle.dumps({"flag": "online", "data": [Evaluates()]})
    yield "subprocess.Popen", pickle.dumps({"flag": "online", "data": [Spawns(marker)]})
    # protocol 0, a text GLOBAL
    yield "protocol 0", b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."
    # a persistent id and an extension code
    yield "persid", b"\x80\x02P1\n."
    yield "ext", b"\x80\x02\x82\x01."
    # nested bombs: lists 3000 deep (over the size cap), 1500 deep inside a request
    yield "deep nesting", b"\x80\x02" + b"]" * 3000 + b"a" * 2999 + b"."
    yield "deep data", (b"\x80\x02}(X\x04\x00\x00\x00flagX\x06\x00\x00\x00onlineX\x04\x00"
                        b"\x00\x00data" + b"]" * 1500 + b"a" * 1499 + b"u.")
    # a string claiming 4 GB
    yield "huge length", b"\x80\x04X\xff\xff\xff\xff" + b"a" * 100
    yield "not a pickle", b"GET / HTTP/1.1\r\n\r\n"


def test_exploit_pickles_are_refused_and_nothing_runs(tmp_path):
    for name, payload in exploit_pickles(tmp_path):
        reader = wire.RequestReader(4096)
        reader.feed(payload)
        with pytest.raises(wire.RefusedRequest):
            item = reader.take()
            if item is None and len(payload) < 4096:  # waits for bytes that never come
                reader.feed(b"\0" * 4096)
                item = reader.take()
            wire.check_request(item)
        assert not (tmp_path / "pwned").exists(), name


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_random_bytes_are_refused_or_wait_never_crash(data):
    reader = wire.RequestReader(512)
    reader.feed(data)
    try:
        item = reader.take()
        if item is not None:
            wire.check_request(item)
    except wire.RefusedRequest:
        pass


plain = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                     st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) |
                     st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)


@given(st.dictionaries(st.sampled_from(["flag", "data", "time", "sender"]), plain))
@settings(max_examples=300, deadline=None)
def test_any_unpickled_shape_is_checked_or_refused(request_dict):
    try:
        checked = wire.check_request(request_dict)
    except wire.RefusedRequest:
        return
    assert isinstance(checked.flag, str) and isinstance(checked.data, list)


# -- replies ----------------------------------------------------------------------------------

def class_references(payload: bytes) -> set:
    return {op.name for op, _, _ in pickletools.genops(payload)} & CLASS_OPCODES


def test_replies_are_plain_built_ins_that_fit_one_recv():
    rows = [("player-%03d-%s" % (i, "x" * 20), 55.5, 1234.6) for i in range(100)]
    payload = wire.fitted_reply("challengers", rows, wire.challenger_rows, "2026-12-02T10:00")
    assert len(payload) <= wire.MAX_REPLY_BYTES
    assert not class_references(payload)
    reply = pickle.loads(payload)
    assert reply["flag"] == "challengers" and 10 < len(reply["data"]) < 100
    assert reply["data"][0] == ("player-000-" + "x" * 20, 56, 1235)
    assert isinstance(reply["time"], str)


def test_elo_history_and_end_replies_have_the_clients_shapes():
    elo = pickle.loads(wire.reply_bytes("client_elo", wire.elo_data(1016.4, 987.0), "t"))
    assert elo["data"] == [1016, [(987,)]]
    assert wire.elo_data(1000.0, None) == [1000, [(1000,)]]
    row = wire.history_row({"id": 3, "ended_at": "2026-12-02T10:00:00+00:00", "players": [
        {"name": "ann", "score": 2.0, "rating_before": 1000.0},
        {"name": "ben", "score": 1.0, "rating_before": 1012.6}]})
    assert row == (3, "ann", "ben", 1000, 1013, 2, 1, "2026-12-02T10:00:00+00:00")
    end = wire.end_game_data({"ann": {"goals": 2, "elo": 1000}}, "ann")
    payload = wire.reply_bytes("end_game_state_1", end, "t")
    assert not class_references(payload) and pickle.loads(payload)["data"][1] == "ann"


def test_both_sides_states_from_one_pickle():
    fields = [299.5, 0, 1, "ann", "ben", 100.0, 360.0, 1180.0, 360.0] + [0.0] * 13
    one, two = wire.state_replies(fields, "2026-12-02T10:00:00+00:00")
    assert pickle.loads(one)["data"] == [1, *fields]
    assert pickle.loads(two) == {"time": "2026-12-02T10:00:00+00:00", "sender": "server",
                                 "flag": "game_state_1", "data": [2, *fields]}
    assert not class_references(two)


# -- the client's ingame request, read by its layout ----------------------------------------------

def safe_reading(data: bytes, max_request: int):
    """What SafeUnpickler and check_request make of `data`: the request (as repr, so that
    1 and 1.0 or two NaNs compare as they are) and the bytes it took, a refusal, or a wait."""
    reader = wire.RequestReader(max_request)
    reader.feed(data)
    try:
        raw = reader.take()
        if raw is None:
            return "wait"
        checked = wire.check_request(raw)
    except wire.RefusedRequest as refused:
        return "refused", refused.code
    return repr(checked), len(data) - len(reader.buffer)


def fast_reading(data: bytes, max_request: int):
    found = wire.read_ingame(bytearray(data), max_request)
    return None if found is None else (repr(found[0]), found[1])


NOW = datetime.datetime(2026, 12, 2, 18, 5, 9, 123456)


def client_ingame(mouse, keys, scheme, sender=17, scancodes=512, protocol=None,
                  time=NOW) -> bytes:
    with scancode_wrapper_registered() as wrapper:
        state = [False] * scancodes
        for code in keys:
            if code < scancodes:
                state[code] = True
        return pickle.dumps({"time": time, "sender": sender,
                             "flag": "ingame", "data": [mouse, wrapper(state), scheme]},
                            protocol=protocol)


def test_the_clients_ingame_requests_take_the_fast_path_with_the_same_result():
    for mouse, keys, scheme in (((640, 360), [7], "wsad"), ((0, 65535), [], "arrows"),
                                ((-5, 1 << 20), [4, 26, 44, 225], "wsad"),
                                ((12.5, 700), [79, 80, 81, 82], "arrows")):
        data = client_ingame(mouse, keys, scheme)
        assert fast_reading(data, 4096) is not None
        assert fast_reading(data, 4096) == safe_reading(data, 4096)
    joined, reader = client_ingame((1, 2), [7], "wsad") * 2, wire.RequestReader(4096)
    reader.feed(joined[:-1])
    assert reader.next_request().data == [[1, 2], ["d"], "wsad"]
    assert reader.next_request() is None  # the second one is not whole yet
    reader.feed(joined[-1:])
    assert reader.next_request().data == [[1, 2], ["d"], "wsad"] and not reader.buffer


#: pickle.dumps of the client's ingame request as pygame 2.6.1 made it (get_pressed() under
#: SDL's dummy video driver, mouse (0, 0), sender 7), zlib-compressed: data, not its code
REAL_PYGAME_INGAME = (
    "eNprYJk6gYkBDGqnaPSwlGTmpk7p4UhJLElFZ06e4szF/oqHSYjbilmFaUrrlKApPWzFqXkpqUVTvNl7WNJyEtOB"
    "Ipl56YkgjSxAjYlTYqdoeDN4M7RN6eEqqARJ6GWnVk7p4Q9OTsxLzk9JDS9KLCgAGjB5ikbnKBjRoASYpBqB6aa8"
    "ODFlSmqpHgAvY0rA")


def test_real_pygames_bytes_are_the_stand_ins_and_take_the_fast_path():
    real = zlib.decompress(base64.b64decode(REAL_PYGAME_INGAME))
    made = client_ingame((0, 0), [], "wsad", sender=7,
                         time=datetime.datetime(2026, 12, 2, 18, 11, 58, 205826))
    assert made == real  # the tests' ScancodeWrapper pickles byte for byte as pygame's
    assert fast_reading(real, 4096) == safe_reading(real, 4096)
    assert wire.read_ingame(bytearray(real), 4096)[0].data == [[0, 0], [], "wsad"]


numbers = st.one_of(st.integers(-2 ** 33, 2 ** 33), st.floats(), st.booleans(), st.none())
ingame_pickles = st.builds(
    client_ingame, st.one_of(st.tuples(numbers, numbers), st.lists(numbers, max_size=3)),
    st.lists(st.sampled_from(sorted(wire.SCANCODE_KEYS) + [0, 300, 511]), max_size=4),
    st.sampled_from(["wsad", "arrows", "WSAD", "", "x" * 70, "wsad\u00e9"]),
    st.one_of(st.integers(-2 ** 40, 2 ** 40), st.text(max_size=8), st.none()),
    st.sampled_from([512, 0, 4, 226, 1024, 1025]), st.sampled_from([None, 2, 3, 4, 5]),
    st.datetimes())


@st.composite
def mutated(draw, pickles):
    """A pickle with a few bytes changed, inserted or dropped, maybe cut or followed."""
    data = bytearray(draw(pickles))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["set", "insert", "drop"]))
        byte = draw(st.integers(0, 255))
        if kind == "set" and at < len(data):
            data[at] = byte
        elif kind == "insert":
            data.insert(at, byte)
        elif at < len(data):
            del data[at]
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=8))


@given(st.one_of(ingame_pickles, mutated(ingame_pickles), st.binary(max_size=800)),
       st.sampled_from([512, 669, 700, 4096]))
@settings(max_examples=400, deadline=None)
def test_the_fast_path_gives_the_safe_unpicklers_result_or_none(data, max_request):
    fast = fast_reading(data, max_request)
    if fast is not None:
        assert fast == safe_reading(data, max_request)
    reader = wire.RequestReader(max_request)  # and next_request, whichever path it takes
    reader.feed(data)
    try:
        got = reader.next_request()
        result = "wait" if got is None else (repr(got), len(data) - len(reader.buffer))
    except wire.RefusedRequest as refused:
        result = "refused", refused.code
    assert result == safe_reading(data, max_request)


@given(mutated(st.builds(client_ingame, st.tuples(st.integers(0, 2000), st.integers(0, 2000)),
                         st.lists(st.sampled_from(sorted(wire.SCANCODE_KEYS)), max_size=3),
                         st.sampled_from(["wsad", "arrows"]))))
@settings(max_examples=300, deadline=None)
def test_a_mutated_client_pickle_is_read_alike_on_both_paths(data):
    fast = fast_reading(data, 4096)
    if fast is not None:
        assert fast == safe_reading(data, 4096)
