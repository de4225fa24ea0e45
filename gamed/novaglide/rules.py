"""Novaglide's arena as pure, deterministic state: discs, ball, hook, dash, goals, clock.

Everything advances in fixed frames of 1/60 s (`Arena.step`); no Twisted, no I/O, no
wall clock. The numbers are DESIGN.md's: a 1280x720 field, discs of radius 40 moving at
500 px/s, a ball of radius 20 kicked at 20 px/frame and slowed by /1.003 a frame, goals
20x100 at each end (y 310-410), a hook flying and pulling at 1200 px/s (20 s cooldown), a
dash of 8 frames at 1600 px/s (10 s cooldown, cancels the hook), 300 s matches and a
golden goal when the clock runs out on a tie.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import attrs

FPS = 60
DT = 1.0 / FPS
WIDTH, HEIGHT = 1280, 720
PLAYER_RADIUS = 40
BALL_RADIUS = 20
PLAYER_SPEED = 500.0 / FPS  # px per frame
KICK_SPEED = 20.0  # px per frame
BALL_FRICTION = 1.003
GOAL_WIDTH, GOAL_TOP, GOAL_BOTTOM = 20, 310, 410
HOOK_SPEED = 1200.0 / FPS
HOOK_COOLDOWN = 20.0
DASH_FRAMES = 8
DASH_SPEED = 1600.0 / FPS
DASH_COOLDOWN = 10.0
MATCH_SECONDS = 300.0
#: the longest pull: the field's diagonal at hook speed (a pull blocked by the other disc
#: ends then instead of holding its owner forever)
MAX_PULL_FRAMES = math.ceil(math.hypot(WIDTH, HEIGHT) / HOOK_SPEED)
STARTS = {1: (100.0, 360.0), 2: (1180.0, 360.0)}
BALL_START = (WIDTH / 2, HEIGHT / 2)

KEY_SCHEMES = {
    "wsad": {"w": (0, -1), "s": (0, 1), "a": (-1, 0), "d": (1, 0)},
    "arrows": {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)},
}
ALL_KEYS = {**KEY_SCHEMES["wsad"], **KEY_SCHEMES["arrows"]}
HOOK_KEY, DASH_KEY = "space", "lshift"


@attrs.frozen
class Input:
    """One player's controls for the coming frames: the mouse and the keys held."""

    mouse: tuple = (0.0, 0.0)
    keys: frozenset = frozenset()
    scheme: str = "wsad"

    def direction(self) -> tuple:
        """The unit vector the movement keys ask for."""
        return direction_of(self.keys, self.scheme)


@functools.lru_cache(maxsize=4096)  # a few key combinations recur every frame
def direction_of(keys: frozenset, scheme: str) -> tuple:
    table = KEY_SCHEMES.get(scheme, ALL_KEYS)
    dx = sum(table[k][0] for k in keys if k in table)
    dy = sum(table[k][1] for k in keys if k in table)
    length = math.hypot(dx, dy)
    return (0.0, 0.0) if length == 0 else (dx / length, dy / length)



IDLE = Input()


def _inside(x: float, y: float) -> tuple:
    """The nearest point where a disc's centre may be (the disc wholly in the field)."""
    return (min(max(x, PLAYER_RADIUS), WIDTH - PLAYER_RADIUS),
            min(max(y, PLAYER_RADIUS), HEIGHT - PLAYER_RADIUS))


def _dash_direction(disc: "Disc", control: Input) -> tuple:
    """Toward the mouse; with the mouse on the disc's centre, the way the keys point (a
    dash with no direction at all does not happen, and spends no cooldown)."""
    direction = _toward((disc.x, disc.y), control.mouse)
    return direction if direction != (0.0, 0.0) else control.direction()


def _toward(origin: tuple, target: tuple) -> tuple:
    dx, dy = target[0] - origin[0], target[1] - origin[1]
    length = math.hypot(dx, dy)
    return (0.0, 0.0) if length < 1e-9 else (dx / length, dy / length)


@attrs.define
class Disc:
    """A player's disc and its hook and dash."""

    x: float
    y: float
    hook_cooldown: float = 0.0  # seconds until the hook is ready again
    dash_cooldown: float = 0.0
    #: None, "flying" (the hook travels to its target) or "pulling" (the owner follows it)
    hook_state: Optional[str] = None
    hook_x: float = 0.0
    hook_y: float = 0.0
    hook_target: tuple = (0.0, 0.0)
    dash_frames: int = 0
    dash_direction: tuple = (0.0, 0.0)
    pull_frames: int = 0  # frames the current pull has lasted

    @property
    def hooking(self) -> bool:
        return self.hook_state is not None

    def hook_point(self) -> tuple:
        return (self.hook_x, self.hook_y) if self.hooking else (self.x, self.y)


@attrs.define
class Ball:
    x: float = BALL_START[0]
    y: float = BALL_START[1]
    vx: float = 0.0
    vy: float = 0.0


@attrs.define
class PlayerStats:
    touches: int = 0
    goals: int = 0
    possession_time: float = 0.0


@attrs.define
class Arena:
    """One match's whole state; `step(inputs)` advances it by one frame."""

    match_frames: int = int(MATCH_SECONDS * FPS)
    frame: int = 0
    discs: dict = attrs.Factory(lambda: {n: Disc(*STARTS[n]) for n in (1, 2)})
    ball: Ball = attrs.Factory(Ball)
    score: dict = attrs.Factory(lambda: {1: 0, 2: 0})
    stats: dict = attrs.Factory(lambda: {1: PlayerStats(), 2: PlayerStats()})
    tiebreak: bool = False
    finished: bool = False
    winner: Optional[int] = None
    last_touch: Optional[int] = None
    #: (frame, side) of every goal, for tests and the match record
    goals: list = attrs.Factory(list)

    @property
    def remaining(self) -> float:
        """Seconds left on the clock (0 during a tiebreak)."""
        return max(0, self.match_frames - self.frame) / FPS

    # -- one frame ------------------------------------------------------------------------

    def step(self, inputs: dict) -> None:
        if self.finished:
            return
        for side in (1, 2):
            self._move_disc(side, inputs.get(side, IDLE))
        self._separate_discs()
        self._move_ball()
        if self.finished:
            return
        if self.last_touch is not None:
            self.stats[self.last_touch].possession_time += DT
        self.frame += 1
        if self.frame >= self.match_frames and not self.tiebreak:
            if self.score[1] == self.score[2]:
                self.tiebreak = True  # golden goal: the next goal wins
            else:
                self._finish(1 if self.score[1] > self.score[2] else 2)

    def _move_disc(self, side: int, control: Input) -> None:
        disc = self.discs[side]
        disc.hook_cooldown = max(0.0, disc.hook_cooldown - DT)
        disc.dash_cooldown = max(0.0, disc.dash_cooldown - DT)
        if (DASH_KEY in control.keys and disc.dash_cooldown == 0.0 and disc.dash_frames == 0
                and _dash_direction(disc, control) != (0.0, 0.0)):
            disc.dash_frames = DASH_FRAMES
            disc.dash_direction = _dash_direction(disc, control)
            disc.dash_cooldown = DASH_COOLDOWN
            disc.hook_state = None  # a dash cancels the hook
        elif (HOOK_KEY in control.keys and disc.hook_cooldown == 0.0 and not disc.hooking
              and disc.dash_frames == 0):
            disc.hook_state = "flying"
            disc.hook_x, disc.hook_y = disc.x, disc.y
            disc.hook_target = (min(max(control.mouse[0], 0.0), WIDTH),
                                min(max(control.mouse[1], 0.0), HEIGHT))
            disc.hook_cooldown = HOOK_COOLDOWN
        if disc.dash_frames > 0:
            disc.dash_frames -= 1
            disc.x += disc.dash_direction[0] * DASH_SPEED
            disc.y += disc.dash_direction[1] * DASH_SPEED
        elif disc.hook_state == "pulling":
            # toward the hook as far as the field lets the disc go (a hook near a wall
            # is reached at the wall); a pull that another disc blocks ends in time
            reach = _inside(disc.hook_x, disc.hook_y)
            distance = math.hypot(reach[0] - disc.x, reach[1] - disc.y)
            disc.pull_frames += 1
            if distance <= HOOK_SPEED:
                disc.x, disc.y = reach
                disc.hook_state = None
            else:
                dx, dy = _toward((disc.x, disc.y), reach)
                disc.x += dx * HOOK_SPEED
                disc.y += dy * HOOK_SPEED
                if disc.pull_frames >= MAX_PULL_FRAMES:
                    disc.hook_state = None
        else:
            dx, dy = control.direction()
            disc.x += dx * PLAYER_SPEED
            disc.y += dy * PLAYER_SPEED
        if disc.hook_state == "flying":
            tx, ty = disc.hook_target
            distance = math.hypot(tx - disc.hook_x, ty - disc.hook_y)
            if distance <= HOOK_SPEED:
                disc.hook_x, disc.hook_y = tx, ty
                disc.hook_state = "pulling"
                disc.pull_frames = 0
            else:
                hx, hy = _toward((disc.hook_x, disc.hook_y), (tx, ty))
                disc.hook_x += hx * HOOK_SPEED
                disc.hook_y += hy * HOOK_SPEED
        # the disc stays wholly in the field (as _inside, inlined: every disc, every frame)
        disc.x = min(max(disc.x, PLAYER_RADIUS), WIDTH - PLAYER_RADIUS)
        disc.y = min(max(disc.y, PLAYER_RADIUS), HEIGHT - PLAYER_RADIUS)

    def _separate_discs(self) -> None:
        a, b = self.discs[1], self.discs[2]
        dx, dy = b.x - a.x, b.y - a.y
        distance = math.hypot(dx, dy)
        overlap = 2 * PLAYER_RADIUS - distance
        if overlap > 0:
            nx, ny = (dx / distance, dy / distance) if distance > 1e-9 else (1.0, 0.0)
            a.x -= nx * overlap / 2
            a.y -= ny * overlap / 2
            b.x += nx * overlap / 2
            b.y += ny * overlap / 2
            for disc in (a, b):
                disc.x, disc.y = _inside(disc.x, disc.y)

    def _move_ball(self) -> None:
        ball = self.ball
        for side in (1, 2):
            disc = self.discs[side]
            dx, dy = ball.x - disc.x, ball.y - disc.y
            distance = math.hypot(dx, dy)
            if distance < PLAYER_RADIUS + BALL_RADIUS:
                nx, ny = (dx / distance, dy / distance) if distance > 1e-9 else (
                    1.0 if side == 1 else -1.0, 0.0)
                # a touch sends the ball away from the player at KICK_SPEED
                ball.vx, ball.vy = nx * KICK_SPEED, ny * KICK_SPEED
                ball.x = disc.x + nx * (PLAYER_RADIUS + BALL_RADIUS)
                ball.y = disc.y + ny * (PLAYER_RADIUS + BALL_RADIUS)
                self.stats[side].touches += 1
                self.last_touch = side
        ball.x += ball.vx
        ball.y += ball.vy
        ball.vx /= BALL_FRICTION
        ball.vy /= BALL_FRICTION
        in_goal_mouth = GOAL_TOP <= ball.y <= GOAL_BOTTOM
        if ball.x - BALL_RADIUS <= GOAL_WIDTH and in_goal_mouth:
            self._goal(2)  # the left goal is player 1's: player 2 scores
            return
        if ball.x + BALL_RADIUS >= WIDTH - GOAL_WIDTH and in_goal_mouth:
            self._goal(1)
            return
        if ball.x - BALL_RADIUS < 0:
            ball.x, ball.vx = BALL_RADIUS, abs(ball.vx)
        elif ball.x + BALL_RADIUS > WIDTH:
            ball.x, ball.vx = WIDTH - BALL_RADIUS, -abs(ball.vx)
        if ball.y - BALL_RADIUS < 0:
            ball.y, ball.vy = BALL_RADIUS, abs(ball.vy)
        elif ball.y + BALL_RADIUS > HEIGHT:
            ball.y, ball.vy = HEIGHT - BALL_RADIUS, -abs(ball.vy)

    def _goal(self, side: int) -> None:
        self.score[side] += 1
        self.stats[side].goals += 1
        self.goals.append((self.frame, side))
        if self.tiebreak:
            self._finish(side)
            return
        self.kickoff()

    def kickoff(self) -> None:
        """Discs back at their starts (cooldowns kept), ball still at the centre."""
        for side, disc in self.discs.items():
            disc.x, disc.y = STARTS[side]
            disc.hook_state = None
            disc.dash_frames = 0
        self.ball = Ball()
        self.last_touch = None

    def _finish(self, winner: Optional[int]) -> None:
        self.finished = True
        self.winner = winner

    def forfeit(self, loser: int) -> None:
        """The other side wins now (a player left for good)."""
        self._finish(3 - loser)

    # -- the wire's view -----------------------------------------------------------------

    def state_fields(self, names: tuple) -> list:
        """game_state_1's data after "your_side", in the seed's order (22 values), as the
        arena holds them: unrounded (the classic wire pickles each number as 8 bytes
        whatever its digits; `messages.state_tail` rounds them as text for JSON lines)."""
        d1, d2 = self.discs[1], self.discs[2]
        h1, h2 = d1.hook_point(), d2.hook_point()
        return [
            self.remaining, self.score[1], self.score[2], names[0], names[1],
            d1.x, d1.y, d2.x, d2.y, h1[0], h1[1], h2[0], h2[1],
            d1.dash_cooldown, d1.hook_cooldown, d2.dash_cooldown, d2.hook_cooldown,
            self.ball.x, self.ball.y, d1.hooking, d2.hooking, self.tiebreak,
        ]
