"""uttt wire shapes: request validation at the edge, reply shapes, the hand-written encoders."""

import attrs
import pytest

from gamed.uttt import rules
from gamed.uttt.messages import (BadRequest, EloUpdate, LastMove, LoginResponse, MatchState,
                                 MatchUpdate, MoveRequest, failure, frame, parse_request,
                                 player_name)
from gamed.uttt.live import state_view


def test_requests_are_structured_with_coordinates_and_ids_as_strings_or_numbers():
    kind, move = parse_request({"type": "move", "data": {
        "id": 17, "sub_x": "2", "sub_y": 0, "x": "1", "y": 2, "extra": "ignored"}})
    assert kind == "move" and move == MoveRequest("17", 2, 0, 1, 2)
    assert parse_request({"type": "match_request", "data": {"player": None}})[1].player is None
    assert parse_request({"type": "match_request"})[1].player is None  # data may be left out
    assert parse_request({"type": "login", "data": {"name": "a", "pw": None}})[1].pw is None


@pytest.mark.parametrize("message, code, reply_type", [
    ({"type": "move", "data": {"id": "1", "sub_x": "3", "sub_y": 0, "x": 0, "y": 0}},
     "invalid_field", "move_response"),
    ({"type": "move", "data": {"id": "1"}}, "missing_field", "move_response"),
    ({"type": "move", "data": {"id": None, "sub_x": 0, "sub_y": 0, "x": 0, "y": 0}},
     "invalid_field", "move_response"),
    ({"type": "end_match", "data": {"id": True}}, "invalid_field", "end_match_response"),
    ({"type": "end_match", "data": {"id": "x" * 200}}, "invalid_field", "end_match_response"),
    ({"type": "login", "data": {"name": 5, "pw": "x"}}, "invalid_field", "login_response"),
    ({"type": "login", "data": {"pw": "x"}}, "invalid_field", "login_response"),
    ({"type": "login", "data": "name"}, "invalid_data", "login_response"),
    ({"type": "temp_session", "data": {"name": ["x"]}}, "invalid_field", "login_response"),
    ({"type": "reconnect", "data": {}}, "invalid_field", "reconnect_response"),
    ({"type": "friend_request", "data": {"user": {}}}, "invalid_field",
     "friend_request_response"),
    ({"type": "nope"}, "unknown_type", "error"),
    ({"type": 3}, "missing_type", "error"),
    ({}, "missing_type", "error"),
])
def test_bad_requests_name_the_problem_and_map_to_the_right_reply(message, code, reply_type):
    with pytest.raises(BadRequest) as exc:
        parse_request(message)
    assert exc.value.code == code and exc.value.message
    reply = failure(exc.value.request_type, exc.value.code, exc.value.message)
    assert reply["type"] == reply_type
    assert reply["data"]["success"] is False and reply["data"]["msg"] == exc.value.message
    assert reply["data"]["error"] == code


@pytest.mark.parametrize("raw, name", [("Bob_1", "bob_1"), ("  abc ", "abc"), ("a-b", "a-b"),
                                       ("ABCDEFGHIJKLMNOP", "abcdefghijklmnop")])
def test_player_names_are_lower_cased(raw, name):
    assert player_name(raw) == name


@pytest.mark.parametrize("raw", ["ab", "a" * 17, "a b", "a.b", "\u00e4bc", "", None, 5])
def test_bad_player_names_are_refused(raw):
    with pytest.raises(BadRequest) as exc:
        player_name(raw)
    assert exc.value.code == "invalid_name"


def test_every_response_carries_a_string_msg():
    for kind in ("login", "temp_session", "reconnect", "match_request", "move", "end_match",
                 "match_states_request", "friend_request", "unfriend_request", None):
        reply = failure(kind, "x", "because")
        assert isinstance(reply["data"]["msg"], str)
    assert frame(LoginResponse(True, "ok", "tok", True, "bob"), "login_response") == {
        "type": "login_response", "data": {"success": True, "msg": "ok", "id": "tok",
                                           "registered": True, "user": "bob", "error": None}}
    assert frame(EloUpdate(None, None, [], [])) == {
        "type": "elo_update", "data": {"elo": None, "rank": None, "top_names": [],
                                       "top_elos": []}}


def test_the_hand_written_match_update_encoder_equals_asdict():
    board = rules.replay([rules.Move(1, 1, 1, 1), rules.Move(1, 1, 0, 2)])
    for state in (state_view(board, "ann", "ben"),
                  state_view(rules.new_board(), "ann", "ben"),
                  state_view(board, "ann", "ben", (rules.MARK_B, False, rules.TIMEOUT))):
        for update in (MatchUpdate("7", "2030-01-01 00:00:00", True, state),
                       MatchUpdate("7", None, False, None)):
            assert frame(update)["data"] == attrs.asdict(update)


def test_match_state_names_the_player_to_move_and_the_winner():
    board = rules.play(rules.new_board(), rules.MARK_A, rules.Move(0, 0, 2, 1))
    state = state_view(board, "ann", "ben")
    assert state.active_player == state.current_player == "ben"
    assert state.last_move == LastMove(0, 0, 2, 1) and not state.game_over
    over = state_view(board, "ann", "ben", (rules.MARK_A, False, rules.ABANDONED))
    assert over.game_over and over.player_won == "ann" and over.active_player is None
    drawn = state_view(board, "ann", "ben", (rules.EMPTY, True, rules.DRAW))
    assert drawn.is_draw and drawn.player_won is None
    assert isinstance(state, MatchState)
