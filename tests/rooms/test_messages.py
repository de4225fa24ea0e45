"""The rooms wire shapes: login details, request fields, replies, the sender splice."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from gamed.rooms.messages import (BadRequest, connection_type_of, error, invite_of,
                                  login_details, may_carry_sender, response, sender_prefix,
                                  with_sender)


def bad(code, func, *args):
    with pytest.raises(BadRequest) as info:
        func(*args)
    assert info.value.code == code
    return info.value


def test_login_details_reads_the_profile_and_ignores_what_the_server_decides():
    details = login_details({"details": {"username": "  ann ", "avatar": 3, "color": 0xE53935,
                                         "border_color": None, "id": "x", "host": True,
                                         "isHost": True}})
    assert (details.username, details.avatar, details.color, details.border_color) == (
        "ann", 3, 0xE53935, 0)
    assert not hasattr(details, "id") and not hasattr(details, "host")


@pytest.mark.parametrize("request_, code", [
    ({}, "invalid_details"),
    ({"details": "ann"}, "invalid_details"),
    ({"details": []}, "invalid_details"),
    ({"details": {}}, "invalid_name"),
    ({"details": {"username": None}}, "invalid_name"),
    ({"details": {"username": "   "}}, "invalid_name"),
    ({"details": {"username": "a\nb"}}, "invalid_name"),
    ({"details": {"username": "ann\u200b"}}, "invalid_name"),  # zero-width space
    ({"details": {"username": "\u202eann"}}, "invalid_name"),  # right-to-left override
    ({"details": {"username": "ann\x7f"}}, "invalid_name"),
    ({"details": {"username": "a\u2028b"}}, "invalid_name"),
    ({"details": {"username": "x" * 33}}, "invalid_name"),
    ({"details": {"username": "ann", "avatar": "1"}}, "invalid_details"),
    ({"details": {"username": "ann", "avatar": 1.5}}, "invalid_details"),
    ({"details": {"username": "ann", "color": False}}, "invalid_details"),
    ({"details": {"username": "ann", "border_color": 2 ** 60}}, "invalid_details"),
])
def test_login_details_refuses_bad_profiles(request_, code):
    bad(code, login_details, request_)


def test_invite_and_connection_type_accept_both_spellings():
    assert invite_of({"inviteId": "abc"}) == invite_of({"invite_id": "abc"}) == "abc"
    for request in ({}, {"inviteId": ""}, {"inviteId": 5}, {"inviteId": None}):
        bad("room_not_found", invite_of, request)
    assert connection_type_of({}) == "server_broadcast"
    assert connection_type_of({"connection_type": "p2p"}) == "p2p"
    bad("unsupported_connection_type", connection_type_of, {"connectionType": 1})


def test_replies_and_errors_carry_their_own_id_and_the_request_id():
    reply = response(7, "room_leave_response", 3)
    assert reply == {"id": 7, "type": "room_leave_response", "requestId": 3,
                     "request_id": 3, "result": "ok"}
    assert list(reply)[:2] == ["id", "type"]
    assert error(8, 3, "not_host", "no") == {"id": 8, "type": "error", "originId": 3,
                                             "error": "not_host", "errorMessage": "no"}


PREFIX = sender_prefix("p1")


def test_sender_prefix_is_json_safe():
    assert PREFIX == '{"sender":"p1",'
    assert json.loads(sender_prefix('we"ird\\') + '"a":1}') == {"sender": 'we"ird\\', "a": 1}


def test_usernames_are_normalised_and_emoji_sequences_allowed():
    assert login_details({"details": {"username": "e\u0301mile"}}).username == "\u00e9mile"
    coder = "\U0001F468\u200d\U0001F4BB"  # man, zero-width joiner, laptop
    assert login_details({"details": {"username": coder}}).username == coder


def test_with_sender_splices_without_touching_the_rest():
    # spacing, number spelling and key order are kept exactly
    assert with_sender(PREFIX, '{"b": 1.50, "a" :[ 1e3 ]}') == '{"sender":"p1","b": 1.50, "a" :[ 1e3 ]}'
    assert with_sender(PREFIX, '{}') == '{"sender":"p1"}'
    assert with_sender(PREFIX, '{  }') == '{"sender":"p1"}'
    assert with_sender(PREFIX, ' \t{"a":1}') == '{"sender":"p1","a":1}'
    for not_object in ('[1]', '"s"', '1', 'null', '', '   ', 'x{'):
        assert with_sender(PREFIX, not_object) is None


def test_a_client_cannot_send_as_another_player():
    for spoof in ('{"sender":"p2","a":1}', '{"a":1,"sender":"p2"}',
                  '{"a":1, "sender" : "p2"}', '{"s\\u0065nder":"p2","a":1}',
                  '{"sender":"p2","a":1,"sender":"p3"}'):
        out = with_sender(PREFIX, spoof)
        assert json.loads(out) == {"sender": "p1", "a": 1}, spoof
        assert out.count("sender") == 1, out
    # a nested "sender" is the game's business and stays as sent
    assert with_sender(PREFIX, '{"m":{"sender":"x"}}') == '{"sender":"p1","m":{"sender":"x"}}'
    # the check is cheap and only fires where a sender key could hide
    assert not may_carry_sender('{"t":"pos","x":123.5,"y":456.25,"seq":1}')
    assert may_carry_sender('{"sender":1}') and may_carry_sender('{"\\u0073ender":1}')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["sender", "type", "x", "sénder", "s"]) | st.text(max_size=6),
                       json_values, max_size=5),
       st.sampled_from([{}, {"separators": (",", ":")}, {"ensure_ascii": False},
                        {"indent": 1}]))
def test_any_object_arrives_with_the_true_sender_first_and_nothing_else_changed(obj, style):
    frame = json.dumps(obj, **style)
    out = with_sender(PREFIX, frame)
    decoded = json.loads(out)
    assert list(decoded)[0] == "sender" and decoded["sender"] == "p1"
    assert {k: v for k, v in decoded.items() if k != "sender"} == {
        k: v for k, v in obj.items() if k != "sender"}
    if not may_carry_sender(frame):
        assert out == PREFIX[:-1] + frame[1:] if not obj else out == PREFIX + frame[1:]


def test_a_frame_too_deep_to_check_for_a_sender_is_refused_not_passed_on():
    deep = '{"sender":"p2","x":' + "[" * 5000 + "]" * 5000 + "}"
    assert with_sender(PREFIX, deep) is None  # a browser could parse it and believe p2
    shallow = '{"x":' + "[" * 5000 + "]" * 5000 + "}"  # no sender: never decoded, relayed
    assert with_sender(PREFIX, shallow) == '{"sender":"p1",' + shallow[1:]


@pytest.mark.parametrize("frame", [
    '\u00a0{"sender":"p2","x":1}',  # whitespace to Python's strip, not to JSON
    '\x1c{"sender":"p2"}',
    '{"sender":"p2","n":%s}' % ("1" * 4400),  # too long an integer for Python, not for JS
    '{"sender":"p2","n":1e400}',  # would come back as Infinity
    '{"s\\u0065nder":"p2","n":NaN}',
])
def test_a_frame_that_may_carry_a_sender_and_cannot_be_checked_is_refused(frame):
    assert with_sender(PREFIX, frame) is None


def test_a_lone_surrogate_escape_comes_back_as_an_escape_writable_in_utf8():
    out = with_sender(PREFIX, '{"sender":"p2","t":"\\ud800 \u00e9"}')
    out.encode("utf-8")
    assert json.loads(out) == {"sender": "p1", "t": "\ud800 \u00e9"}
