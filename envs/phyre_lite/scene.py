"""PHYRE-Lite scenes: body specs, the Pymunk world they build, action checks, rollouts, rendering.

Scene units are pixels of a 256x256 scene with y up (origin bottom-left), as in PHYRE. One
action places a red ball (x, y, r) in [0, 1]^3: x and y scaled to the scene, r to 2..32 px.
The world runs at 60 steps per second for at most 1000 steps; a puzzle is solved when the green
body touches the goal body for 180 consecutive steps (3 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pymunk

from .. import raster

SCENE = 256.0
RADIUS_RANGE = (2.0, 32.0)
STEPS_PER_SECOND = 60
MAX_STEPS = 1000
SOLVE_STEPS = 180
SUBSTEPS = 2  # physics substeps per step (dt = 1/120 s) so that small fast balls do not tunnel
GRAVITY = 500.0  # px / s^2
DENSITY = 0.01
FRICTION = 0.5
ELASTICITY = 0.2
DAMPING = 0.9  # share of velocity kept per second (air drag; lets scenes settle)
SETTLE_SPEED = 1.0  # px/s (and rad/s / 20): below it for SETTLE_STEPS steps = settled
SETTLE_STEPS = 20

# shape.role -> colour; the goal's colour follows whether it is dynamic (blue) or static (purple)
ROLE_COLORS = {"static": "black", "dynamic": "gray", "green": "green", "action": "red"}
WALL, BODY, GREEN, GOAL, ACTION = range(5)  # collision types


@dataclass(frozen=True)
class BodySpec:
    """One rigid body: role in {static, dynamic, green, goal}; parts in body-local px.

    `dynamic` is False for static bodies (role "static", or a purple static goal).

    parts: ("circle", (cx, cy), radius) or ("poly", ((x, y), ...)) convex pieces.
    """

    role: str
    parts: tuple
    position: tuple[float, float]
    angle: float = 0.0
    dynamic: bool = True

    @property
    def color(self) -> str:
        """Render colour: black/gray/green, and blue (dynamic) or purple (static) for the goal."""
        if self.role == "goal":
            return "blue" if self.dynamic else "purple"
        return ROLE_COLORS[self.role]


@dataclass(frozen=True)
class Puzzle:
    """One puzzle: template name, variant index and the bodies of its initial scene."""

    template: str
    variant: int
    bodies: tuple[BodySpec, ...]

    @property
    def task_id(self) -> str:
        """`template:variant` (variant zero-padded to 3 digits)."""
        return f"{self.template}:{self.variant:03d}"


@dataclass
class Outcome:
    """Result of one attempt: solved, valid, steps simulated, frames (T, H, W, 3) if recorded."""

    valid: bool
    solved: bool = False
    steps: int = 0
    contact_steps: int = 0
    frames: np.ndarray | None = None
    states: list[dict] = field(default_factory=list)


def action_to_ball(action) -> tuple[float, float, float]:
    """Action in [0, 1]^3 -> red ball (x, y, r) in scene px."""
    x, y, r = (float(v) for v in np.asarray(action, np.float64).reshape(3))
    low, high = RADIUS_RANGE
    return x * SCENE, y * SCENE, low + r * (high - low)


def _add_shapes(space: pymunk.Space, body: pymunk.Body, spec: BodySpec, kind: int) -> None:
    shapes = []
    for part in spec.parts:
        if part[0] == "circle":
            shape = pymunk.Circle(body, part[2], tuple(part[1]))
        else:
            shape = pymunk.Poly(body, [tuple(v) for v in part[1]])
        shape.friction, shape.elasticity = FRICTION, ELASTICITY
        shape.density = DENSITY
        shape.collision_type = kind
        shape.color = spec.color
        shapes.append(shape)
    space.add(body, *shapes)


def build_space(puzzle: Puzzle) -> pymunk.Space:
    """The puzzle's initial world (walls around the scene, bodies, no action ball)."""
    space = pymunk.Space()
    space.gravity = (0.0, -GRAVITY)
    space.damping = DAMPING
    space.iterations = 15
    for a, b in (((-10, -10), (SCENE + 10, -10)), ((-10, -10), (-10, SCENE + 10)),
                 ((SCENE + 10, -10), (SCENE + 10, SCENE + 10)),
                 ((-10, SCENE + 10), (SCENE + 10, SCENE + 10))):
        wall = pymunk.Segment(space.static_body, a, b, 10.0)
        wall.friction, wall.elasticity, wall.collision_type = FRICTION, ELASTICITY, WALL
        space.add(wall)
    for spec in puzzle.bodies:
        body_type = pymunk.Body.DYNAMIC if spec.dynamic else pymunk.Body.STATIC
        body = pymunk.Body(body_type=body_type)
        body.position, body.angle = spec.position, spec.angle
        kind = {"green": GREEN, "goal": GOAL}.get(spec.role, BODY)
        _add_shapes(space, body, spec, kind)
    return space


def placement_error(space: pymunk.Space, action) -> str | None:
    """Why the action's ball cannot be placed (leaves the scene, overlaps a body), else None."""
    if not np.all(np.isfinite(np.asarray(action, np.float64))):
        return "action is not finite"
    x, y, r = action_to_ball(action)
    if not (r <= x <= SCENE - r and r <= y <= SCENE - r):
        return "ball leaves the scene"
    for hit in space.point_query((x, y), r, pymunk.ShapeFilter()):
        if hit.shape.collision_type != WALL and hit.distance < r - 1e-9:
            return "ball overlaps a body"
    return None


def add_action_ball(space: pymunk.Space, action) -> None:
    """Add the red action ball to the space (the caller has checked the placement)."""
    x, y, r = action_to_ball(action)
    spec = BodySpec("action", (("circle", (0.0, 0.0), r),), (x, y))
    body = pymunk.Body()
    body.position = (x, y)
    _add_shapes(space, body, spec, ACTION)


def _touching_goal(green_bodies: list[pymunk.Body]) -> bool:
    hits = []

    def check(arbiter: pymunk.Arbiter) -> None:
        touching = arbiter.contact_point_set.points
        if touching and any(s.collision_type == GOAL for s in arbiter.shapes):
            hits.append(True)

    for body in green_bodies:
        body.each_arbiter(check)
    return bool(hits)


def _is_still(bodies: list[pymunk.Body]) -> bool:
    return all(b.velocity.length < SETTLE_SPEED and abs(b.angular_velocity) * 20 < SETTLE_SPEED
               for b in bodies)


def body_states(space: pymunk.Space) -> list[dict]:
    """Position (px), angle (rad) and colour of every dynamic body, in the space's order."""
    return [{"color": next(iter(b.shapes)).color, "position": tuple(b.position),
             "angle": float(b.angle), "velocity": tuple(b.velocity)}
            for b in space.bodies if b.body_type == pymunk.Body.DYNAMIC]


def simulate(space: pymunk.Space, record_size: int = 0, frame_stride: int = 6,
             until_done: bool = True, max_steps: int = MAX_STEPS,
             on_frame: Callable[[pymunk.Space, int], None] | None = None) -> Outcome:
    """Run a prepared space (mutated) until solved, settled or max_steps; record frames if asked.

    Early stops are exact: once solved, and once every body has settled (then the contact state
    can no longer change, so the outcome follows from the remaining step budget); with
    until_done=False it runs all max_steps. on_frame(space, k) may edit the space just before
    recorded frame k (1-based; frame 0 is the initial scene) is rendered.
    """
    dynamic = [b for b in space.bodies if b.body_type == pymunk.Body.DYNAMIC]
    green = [b for b in dynamic if any(s.collision_type == GREEN for s in b.shapes)]
    frames = [render(space, record_size)] if record_size else []
    states = [body_states(space)] if record_size else []
    run = best = still = 0
    dt = 1.0 / (STEPS_PER_SECOND * SUBSTEPS)
    step = 0
    while step < max_steps:
        for _ in range(SUBSTEPS):
            space.step(dt)
        step += 1
        run = run + 1 if _touching_goal(green) else 0
        best = max(best, run)
        still = still + 1 if _is_still(dynamic) else 0
        if record_size and step % frame_stride == 0:
            if on_frame is not None:
                on_frame(space, len(frames))
            frames.append(render(space, record_size))
            states.append(body_states(space))
        if until_done and best >= SOLVE_STEPS:
            break
        if until_done and still >= SETTLE_STEPS:
            best = max(best, run + max_steps - step if run else 0)
            break
    return Outcome(valid=True, solved=best >= SOLVE_STEPS, steps=step,
                   contact_steps=min(best, MAX_STEPS),
                   frames=np.stack(frames) if frames else None, states=states)


def attempt(puzzle_space: pymunk.Space, action, record_size: int = 0,
            frame_stride: int = 6, **simulate_kwargs) -> Outcome:
    """Try one action on a copy of the puzzle's space; invalid placements are not simulated."""
    if action is not None and placement_error(puzzle_space, action) is not None:
        return Outcome(valid=False)
    space = puzzle_space.copy()
    if action is not None:
        add_action_ball(space, action)
    return simulate(space, record_size, frame_stride, **simulate_kwargs)


def render(space: pymunk.Space, size: int, supersample: int = 2) -> np.ndarray:
    """The scene as uint8 (size, size, 3): walls hidden, bodies in their role colours."""
    canvas = raster.new_canvas(size, supersample)
    scale = size * supersample / SCENE

    def to_px(p) -> np.ndarray:
        return np.array([p[0] * scale, (SCENE - p[1]) * scale])

    for shape in space.shapes:
        if shape.collision_type == WALL:
            continue
        color = raster.PALETTE[shape.color]
        body = shape.body
        if isinstance(shape, pymunk.Circle):
            center = body.local_to_world(shape.offset)
            raster.draw_disc(canvas, to_px(center), shape.radius * scale, color)
        else:
            verts = [to_px(body.local_to_world(v)) for v in shape.get_vertices()]
            raster.draw_polygon(canvas, verts, color)
    return raster.finish_canvas(canvas, supersample)
