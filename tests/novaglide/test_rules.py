"""Novaglide's arena rules, frame by frame (pure: no clock, no network)."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from gamed.novaglide import rules
from gamed.novaglide.rules import Arena, Input

IDLE = {1: rules.IDLE, 2: rules.IDLE}


def keys(*names, mouse=(640, 360), scheme="wsad"):
    return Input(mouse, frozenset(names), scheme)


def run(arena, frames, inputs=None):
    for _ in range(frames):
        arena.step(inputs or IDLE)


def test_start_positions_and_state_fields():
    arena = Arena()
    fields = arena.state_fields(("ann", "ben"))
    assert len(fields) == 22  # + your_side = the seed's 23
    assert fields[0] == 300.0 and fields[1:3] == [0, 0] and fields[3:5] == ["ann", "ben"]
    assert fields[5:9] == [100.0, 360.0, 1180.0, 360.0]
    assert fields[17:19] == [640.0, 360.0] and fields[21] is False


def test_movement_speed_schemes_and_diagonals():
    arena = Arena()
    run(arena, 60, {1: keys("d"), 2: keys("left", scheme="arrows")})
    assert arena.discs[1].x == pytest.approx(600.0)  # 500 px/s for 1 s
    assert arena.discs[2].x == pytest.approx(680.0)
    arena = Arena()
    run(arena, 30, {1: keys("s", "d"), 2: rules.IDLE})
    moved = math.hypot(arena.discs[1].x - 100, arena.discs[1].y - 360)
    assert moved == pytest.approx(250.0)  # a diagonal is not faster
    arena = Arena()
    run(arena, 30, {1: keys("left", scheme="wsad"), 2: rules.IDLE})
    assert arena.discs[1].x == 100.0  # arrow keys do not count in the wsad scheme


def test_discs_stay_in_the_field():
    arena = Arena()
    run(arena, 120, {1: keys("a", "w"), 2: keys("right", "down", scheme="arrows")})
    assert (arena.discs[1].x, arena.discs[1].y) == (40, 40)
    assert (arena.discs[2].x, arena.discs[2].y) == (1240, 680)


def test_a_touch_kicks_the_ball_away_at_20_px_per_frame_and_it_slows_down():
    arena = Arena()
    arena.discs[1].x, arena.discs[1].y = 640 - 59, 360  # overlapping the ball from the left
    arena.step(IDLE)
    assert arena.stats[1].touches == 1 and arena.last_touch == 1
    assert arena.ball.vx == pytest.approx(20 / 1.003)
    speed = arena.ball.vx
    arena.step(IDLE)
    assert arena.ball.vx == pytest.approx(speed / 1.003)


def test_ball_bounces_off_walls_outside_the_goal_mouth():
    arena = Arena()
    arena.ball.x, arena.ball.y, arena.ball.vx, arena.ball.vy = 640, 25, 0, -10
    arena.step(IDLE)
    assert arena.ball.vy > 0 and arena.ball.y >= 20
    arena.ball.x, arena.ball.y, arena.ball.vx, arena.ball.vy = 30, 100, -15, 0
    arena.step(IDLE)
    assert arena.ball.vx > 0 and arena.score == {1: 0, 2: 0}


@pytest.mark.parametrize("x, vx, scorer", [(45, -10, 2), (1235, 10, 1)])
def test_a_goal_each_side_then_kickoff(x, vx, scorer):
    arena = Arena()
    arena.discs[1].x = 300
    arena.ball.x, arena.ball.y, arena.ball.vx = x, 360, vx
    arena.step(IDLE)
    assert arena.score[scorer] == 1 and arena.score[3 - scorer] == 0
    assert arena.stats[scorer].goals == 1
    assert (arena.ball.x, arena.ball.y) == rules.BALL_START
    assert (arena.discs[1].x, arena.discs[1].y) == rules.STARTS[1]
    assert not arena.finished


def test_ball_outside_the_goal_mouth_height_is_no_goal():
    arena = Arena()
    arena.ball.x, arena.ball.y, arena.ball.vx = 45, 300, -10  # above y 310
    arena.step(IDLE)
    assert arena.score == {1: 0, 2: 0}


def test_hook_flies_then_pulls_its_owner_then_cools_down():
    arena = Arena()
    target = (700, 360)  # 600 px to the right of player 1
    arena.step({1: keys("space", mouse=target), 2: rules.IDLE})
    disc = arena.discs[1]
    assert disc.hook_state == "flying" and disc.hooking
    assert disc.hook_x == pytest.approx(120.0)  # 1200 px/s = 20 px/frame
    run(arena, 29, {1: keys(mouse=target), 2: rules.IDLE})
    assert disc.hook_state == "pulling" and (disc.hook_x, disc.hook_y) == target
    assert disc.x == 100  # not pulled yet while flying
    arena.step(IDLE)
    assert disc.x == pytest.approx(120.0)
    run(arena, 40)
    assert not disc.hooking and disc.x == pytest.approx(700.0)
    assert 0 < disc.hook_cooldown <= 20.0
    arena.step({1: keys("space", mouse=(100, 100)), 2: rules.IDLE})
    assert not disc.hooking  # still cooling down
    disc.hook_cooldown = 0.0
    arena.step({1: keys("space", mouse=(100, 100)), 2: rules.IDLE})
    assert disc.hooking


@pytest.mark.parametrize("target, reached", [
    ((10, 360), (40, 360)),  # behind the left wall's reach
    ((100, 2), (100, 40)),  # at the top edge
    ((1280, 720), (1240, 680)),  # the far corner
    ((-50, -50), (40, 40)),  # off the field: the hook stops at the border
])
def test_a_hook_near_a_wall_pulls_its_owner_to_the_wall_and_ends(target, reached):
    arena = Arena()
    arena.discs[2].x, arena.discs[2].y = 640, 100  # out of the way
    arena.step({1: keys("space", mouse=target), 2: rules.IDLE})
    run(arena, 2 * rules.MAX_PULL_FRAMES)  # the flight and the pull, each at most that
    disc = arena.discs[1]
    assert not disc.hooking and (disc.x, disc.y) == pytest.approx(reached)
    arena.step({1: keys("s"), 2: rules.IDLE})  # it can move again
    assert disc.y == pytest.approx(min(reached[1] + 500 / 60, 680))


def test_a_pull_the_other_disc_blocks_ends_after_the_longest_pull():
    arena = Arena()
    opponent = arena.discs[2]
    arena.step({1: keys("space", mouse=(40, 40)), 2: rules.IDLE})
    frames = 0
    while arena.discs[1].hooking:
        opponent.x, opponent.y = 45, 45  # holds the corner the hook pulls toward
        arena.step({1: rules.IDLE, 2: rules.IDLE})
        frames += 1
        assert frames < 2 * rules.MAX_PULL_FRAMES
    flight = math.ceil(math.hypot(100 - 40, 360 - 40) / rules.HOOK_SPEED)
    assert frames <= flight + rules.MAX_PULL_FRAMES  # the flight, then the longest pull


def test_dash_moves_8_frames_at_1600_and_cancels_the_hook():
    arena = Arena()
    arena.step({1: keys("space", mouse=(100, 700)), 2: rules.IDLE})
    assert arena.discs[1].hooking
    arena.step({1: keys("lshift", mouse=(1000, 360)), 2: rules.IDLE})
    disc = arena.discs[1]
    assert not disc.hooking
    run(arena, 7)
    assert disc.x == pytest.approx(100 + 8 * 1600 / 60)
    run(arena, 5)
    assert disc.x == pytest.approx(100 + 8 * 1600 / 60)  # the dash is over
    assert disc.dash_cooldown == pytest.approx(10.0 - 12 / 60)  # set on the dash's frame
    arena.step({1: keys("lshift", mouse=(0, 360)), 2: rules.IDLE})
    assert disc.dash_frames == 0  # cooling down


def test_a_dash_with_the_mouse_on_the_disc_goes_the_keys_way_or_not_at_all():
    arena = Arena()
    disc = arena.discs[1]
    arena.step({1: keys("lshift", mouse=(100, 360)), 2: rules.IDLE})  # no direction at all
    assert disc.dash_frames == 0 and disc.dash_cooldown == 0.0 and disc.x == 100
    arena.step({1: keys("lshift", "s", mouse=(disc.x, disc.y)), 2: rules.IDLE})
    assert disc.dash_cooldown > 0 and disc.y == pytest.approx(360 + 1600 / 60)


def test_timer_ends_the_match_with_the_leader_winning():
    arena = Arena(match_frames=60)
    arena.score[2] = 1
    run(arena, 59)
    assert not arena.finished and arena.remaining == pytest.approx(1 / 60)
    arena.step(IDLE)
    assert arena.finished and arena.winner == 2 and arena.remaining == 0


def test_tie_at_the_end_goes_to_a_golden_goal():
    arena = Arena(match_frames=10)
    run(arena, 10)
    assert arena.tiebreak and not arena.finished
    run(arena, 100)
    assert not arena.finished  # nobody scores: it goes on
    arena.ball.x, arena.ball.y, arena.ball.vx = 1235, 360, 10
    arena.step(IDLE)
    assert arena.finished and arena.winner == 1 and arena.score[1] == 1


def test_forfeit_and_no_step_after_the_end():
    arena = Arena()
    arena.forfeit(1)
    assert arena.finished and arena.winner == 2
    frame = arena.frame
    arena.step(IDLE)
    assert arena.frame == frame


def test_possession_follows_the_last_touch():
    arena = Arena()
    arena.discs[2].x, arena.discs[2].y = 640 + 59, 360
    run(arena, 12)  # the ball has not reached player 1 yet
    assert arena.last_touch == 2 and arena.stats[2].possession_time == pytest.approx(0.2)
    assert arena.stats[1].possession_time == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.frozensets(st.sampled_from(
    ["w", "a", "s", "d", "up", "down", "left", "right", "space", "lshift"])),
    st.tuples(st.floats(-100, 1400), st.floats(-100, 800))), min_size=1, max_size=120))
def test_any_inputs_keep_everything_in_bounds_and_deterministic(moves):
    def play():
        arena = Arena()
        for pressed, mouse in moves:
            arena.step({1: Input(mouse, pressed, "wsad"), 2: Input(mouse, pressed, "arrows")})
        return arena

    first, second = play(), play()
    assert first.state_fields(("a", "b")) == second.state_fields(("a", "b"))
    for disc in first.discs.values():
        assert 40 <= disc.x <= 1240 and 40 <= disc.y <= 680
        assert disc.pull_frames <= rules.MAX_PULL_FRAMES
    assert 0 <= first.ball.x <= 1280 and 0 <= first.ball.y <= 720
