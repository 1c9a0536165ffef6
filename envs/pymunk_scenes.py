"""2D scenes on Pymunk: each one only says what is in the world (the backend does the rest).

Every `_populate` first draws all of its random numbers, then adds objects in a fixed order, so
that `reset(options={"exclude_ids": [k]})` yields the same scene minus object k.
"""

from __future__ import annotations

import numpy as np

from .base import check_flag, check_interval, check_number
from .pymunk_backend import PymunkScene
from .raster import COLOR_NAMES

MATERIAL_ELASTICITY = {"rubber": 0.6, "metal": 0.9}
MATERIAL_FRICTION = {"rubber": 0.8, "metal": 0.3}


def sample_separated(rng: np.random.Generator, radii, low, high,
                     gap: float = 0.1, tries: int = 200) -> np.ndarray:
    """Positions (K, 2) in the box [low, high] (scalars or (x, y) pairs); discs do not overlap."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    positions: list[np.ndarray] = []
    for radius in radii:
        for _ in range(tries):
            candidate = rng.uniform(low + radius, high - radius, size=2)
            if all(np.hypot(*(candidate - p)) > radius + r + gap
                   for p, r in zip(positions, radii)):
                break
        positions.append(candidate)
    return np.array(positions)


class Billiards(PymunkScene):
    """Balls of varied mass, size and colour on a frictionless walled table, no gravity.

    ## Description

    A passive 2D scene (Pymunk): balls bounce inside four static walls along the edges of the
    world, with no gravity and no friction. `elastic=True`: every contact has restitution 1
    (energy is conserved); `elastic=False`: elasticity follows each ball's material (rubber
    0.6, metal 0.9; walls 0.9, and Pymunk multiplies the two shapes' values), so energy drops
    exactly at collisions. Initial velocities are aimed at other balls so that most episodes
    hold collisions. Registered as `ia_world/Billiards-v0` (`elastic=True`) and
    `ia_world/BilliardsInelastic-v0` (registered with `elastic=False`).

    ## Action Space

    Passive scene: `Discrete(1)`, whose only action is the no-op `0`. `step` ignores its action
    entirely (any value is accepted and has no effect); the scene evolves on its own.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, an orthographic view of the
    world (x right, y up; the frame's row 0 is the top of the world). Ground truth comes in
    `info` (see "Ground truth in `info`" below).

    ## Rewards

    None: every `step` returns reward `0.0`.

    ## Starting State

    From the `reset` seed: the four walls get object ids 0-3, then the balls, whose count is
    drawn uniformly from `num_balls` (inclusive). Each ball has a radius uniform in
    [0.45, 0.9] m, density uniform in [0.5, 2] (mass = density x pi r^2), a random colour and
    material (rubber or metal) and a non-overlapping position inside the walls. Its speed is
    uniform in `speed`, aimed at a randomly drawn ball (the world centre when it drew itself)
    with Gaussian jitter (sd 0.25 rad); its spin is uniform in [-2, 2] rad/s.
    `reset(options={"exclude_ids": [k, ...]})` leaves those objects out; every other object
    starts exactly as in the full scene and keeps its id.

    ## Episode End

    The episode never terminates (`terminated` is always False). It is truncated
    (`truncated=True`) at the step that reaches `max_steps` frames after `reset`; `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `num_balls` (tuple[int, int], default `(3, 6)`): inclusive range of the ball count,
      within [1, 12] (ValueError otherwise).
    - `elastic` (bool, default `True`): restitution 1 everywhere if True, per material if
      False; must be a real bool (ValueError otherwise).
    - `speed` (tuple[float, float], default `(4.0, 9.0)`): range of initial speeds in m/s,
      within [0, 30].

    Keyword arguments of every Pymunk scene, documented on `PymunkScene`: `size`, `max_steps`,
    `render_mode`, `world_size`, `physics_dt`, `frame_skip`, `supersample`. `gravity` is
    fixed at 0 m/s^2 by this scene (passing it raises TypeError).

    ## Ground truth in `info`

    As every Pymunk scene: see `PymunkScene`.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/Billiards-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    info["states"]["position"]  # (K, 3) ground-truth positions, K objects (static included)
    obs, reward, terminated, truncated, info = env.step(0)
    info["energy"]["total"], info["collisions"]  # ground truth of the new frame
    env.close()
    ```
    """

    def __init__(self, num_balls: tuple[int, int] = (3, 6), elastic: bool = True,
                 speed: tuple[float, float] = (4.0, 9.0), **kwargs):
        super().__init__(gravity=0.0, **kwargs)
        self.num_balls = check_interval("num_balls", num_balls, 1, 12, integer=True)
        self.elastic = check_flag("elastic", elastic)
        self.speed = check_interval("speed", speed, 0.0, 30.0)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        count = int(rng.integers(self.num_balls[0], self.num_balls[1] + 1))
        radii = rng.uniform(0.45, 0.9, size=count)
        densities = rng.uniform(0.5, 2.0, size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        materials = rng.choice(list(MATERIAL_ELASTICITY), size=count)
        positions = sample_separated(rng, radii, 0.3, self.world_size - 0.3)
        targets = rng.integers(0, count, size=count)
        speeds = rng.uniform(*self.speed, size=count)
        jitter = rng.normal(0.0, 0.25, size=count)
        spins = rng.uniform(-2.0, 2.0, size=count)
        wall_elasticity = 1.0 if self.elastic else 0.9
        self.add_border(elasticity=wall_elasticity)
        for i in range(count):
            aim = positions[targets[i]] - positions[i]
            if targets[i] == i or not np.any(aim):
                aim = self.world_size / 2 - positions[i] + 1e-3
            angle = np.arctan2(aim[1], aim[0]) + jitter[i]
            velocity = speeds[i] * np.array([np.cos(angle), np.sin(angle)])
            elasticity = 1.0 if self.elastic else MATERIAL_ELASTICITY[materials[i]]
            mass = float(densities[i] * np.pi * radii[i] ** 2)
            self.add_ball(positions[i], velocity, radii[i], mass, str(colors[i]),
                          material=str(materials[i]), elasticity=elasticity,
                          angular_velocity=float(spins[i]))


class Gravity2D(PymunkScene):
    """Balls and boxes falling under gravity 9.81 onto a floor, ramps and a stack of boxes.

    ## Description

    A passive 2D scene (Pymunk) seen from the side: bodies start in the upper part of the world
    with random velocities; 0-2 static ramps in the middle band send them sliding and rolling;
    with probability `stack_chance` a tower of boxes stands on the floor (dropped from a hair
    above it, so it settles in the first frames). Contacts lose energy (restitution < 1,
    friction), so the total energy never rises.

    ## Action Space

    Passive scene: `Discrete(1)`, whose only action is the no-op `0`. `step` ignores its action
    entirely (any value is accepted and has no effect); the scene evolves on its own.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, an orthographic view of the
    world (x right, y up; the frame's row 0 is the top of the world). Ground truth comes in
    `info` (see "Ground truth in `info`" below).

    ## Rewards

    None: every `step` returns reward `0.0`.

    ## Starting State

    From the `reset` seed: four border walls (ids 0-3; the bottom one is the floor), then the
    ramps (count uniform in `num_ramps`, each from a side wall at 50-60 % of the height,
    sloping down towards the middle), then the tower (2-3 rubber boxes, with probability
    `stack_chance`), then the falling bodies (count uniform in `num_bodies`; each a ball of
    radius 0.3-0.6 m or a box of sides 0.5-1.1 m with equal odds, density 0.5-2, random colour,
    material, angle and spin in [-2, 2] rad/s, velocity uniform in [-3, 3] x [-2, 0.5] m/s,
    placed without overlap with y above 62 % of the world).
    `reset(options={"exclude_ids": [k, ...]})` leaves those objects out; every other object
    starts exactly as in the full scene and keeps its id.

    ## Episode End

    The episode never terminates (`terminated` is always False). It is truncated
    (`truncated=True`) at the step that reaches `max_steps` frames after `reset`; `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `num_bodies` (tuple[int, int], default `(3, 6)`): inclusive range of the falling-body
      count, within [1, 10].
    - `num_ramps` (tuple[int, int], default `(0, 2)`): inclusive range of the ramp count,
      within [0, 2].
    - `stack_chance` (float, default `0.6`): probability of the box tower, in [0, 1].

    Keyword arguments of every Pymunk scene, documented on `PymunkScene`: `size`, `max_steps`,
    `render_mode`, `world_size`, `physics_dt`, `frame_skip`, `supersample`. `gravity` is
    fixed at 9.81 m/s^2 by this scene (passing it raises TypeError).

    ## Ground truth in `info`

    As every Pymunk scene: see `PymunkScene`.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/Gravity2D-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    info["states"]["position"]  # (K, 3) ground-truth positions, K objects (static included)
    obs, reward, terminated, truncated, info = env.step(0)
    info["energy"]["total"], info["collisions"]  # ground truth of the new frame
    env.close()
    ```
    """

    def __init__(self, num_bodies: tuple[int, int] = (3, 6), num_ramps: tuple[int, int] = (0, 2),
                 stack_chance: float = 0.6, **kwargs):
        super().__init__(gravity=9.81, **kwargs)
        self.num_bodies = check_interval("num_bodies", num_bodies, 1, 10, integer=True)
        self.num_ramps = check_interval("num_ramps", num_ramps, 0, 2, integer=True)
        self.stack_chance = check_number("stack_chance", stack_chance, 0.0, 1.0)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        w = self.world_size
        # ramps: high end at a side wall, sloping down towards the middle, in the band y 2.5..6
        ramp_count = int(rng.integers(self.num_ramps[0], self.num_ramps[1] + 1))
        ramp_sides = rng.permutation([0.0, 1.0])[:ramp_count]
        ramp_tops = rng.uniform(0.5, 0.6, size=ramp_count) * w
        ramp_drops = rng.uniform(0.15, 0.25, size=ramp_count) * w
        ramp_lengths = rng.uniform(0.25, 0.4, size=ramp_count) * w
        # a tower of 2-3 boxes on the floor, away from the walls
        tower_count = int(rng.integers(2, 4)) if rng.random() < self.stack_chance else 0
        tower_x = rng.uniform(0.3, 0.7) * w
        tower_sizes = rng.uniform((0.6, 0.45), (1.0, 0.65), size=(tower_count, 2))
        tower_colors = rng.choice(COLOR_NAMES, size=tower_count)
        tower_densities = rng.uniform(0.5, 2.0, size=tower_count)
        # falling bodies: balls or boxes, each with a bounding radius for the spacing
        count = int(rng.integers(self.num_bodies[0], self.num_bodies[1] + 1))
        is_ball = rng.random(count) < 0.5
        radii = rng.uniform(0.3, 0.6, size=count)
        box_sizes = rng.uniform(0.5, 1.1, size=(count, 2))
        bounds = np.where(is_ball, radii, 0.5 * np.hypot(box_sizes[:, 0], box_sizes[:, 1]))
        densities = rng.uniform(0.5, 2.0, size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        materials = rng.choice(list(MATERIAL_ELASTICITY), size=count)
        positions = sample_separated(rng, bounds, (0.25, 0.62 * w), (w - 0.25, w - 0.25))
        velocities = rng.uniform((-3.0, -2.0), (3.0, 0.5), size=(count, 2))
        angles = rng.uniform(0.0, 2 * np.pi, size=count)
        spins = rng.uniform(-2.0, 2.0, size=count)

        self.add_border(elasticity=0.7, friction=0.6)
        for side, top, drop, length in zip(ramp_sides, ramp_tops, ramp_drops, ramp_lengths):
            wall_x = 0.2 + side * (w - 0.4)
            end_x = wall_x + (1.0 - 2.0 * side) * length
            self.add_wall((wall_x, top), (end_x, top - drop), thickness=0.15, elasticity=0.5,
                          friction=0.3)
        y = 0.2 + 0.05
        for (width, height), color, density in zip(tower_sizes, tower_colors, tower_densities):
            self.add_box((tower_x, y + height / 2), (0.0, 0.0), width, height,
                         float(density * width * height), str(color), material="rubber",
                         elasticity=MATERIAL_ELASTICITY["rubber"],
                         friction=MATERIAL_FRICTION["rubber"])
            y += height + 0.05
        for i in range(count):
            material = str(materials[i])
            common = dict(color=str(colors[i]), material=material,
                          elasticity=MATERIAL_ELASTICITY[material],
                          friction=MATERIAL_FRICTION[material], angular_velocity=float(spins[i]))
            if is_ball[i]:
                mass = float(densities[i] * np.pi * radii[i] ** 2)
                self.add_ball(positions[i], velocities[i], radii[i], mass, **common)
            else:
                width, height = box_sizes[i]
                self.add_box(positions[i], velocities[i], width, height,
                             float(densities[i] * width * height), angle=float(angles[i]),
                             **common)


class Cradle(PymunkScene):
    """Newton's cradle: a row of pendulum balls; a swinging striker starts a chain of collisions.

    ## Description

    A passive 2D scene (Pymunk) under gravity 9.81 seen from the side. The balls hang from a
    static bar on rigid, massless strings, a hair apart, all metal with restitution 1 and no
    friction; their masses differ per ball. The striker (the first or last ball, at random)
    starts raised and already swinging towards the row, with a random amplitude small enough
    that every later swing (even of a lighter ball) stays inside the frame.

    ## Action Space

    Passive scene: `Discrete(1)`, whose only action is the no-op `0`. `step` ignores its action
    entirely (any value is accepted and has no effect); the scene evolves on its own.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, an orthographic view of the
    world (x right, y up; the frame's row 0 is the top of the world). Ground truth comes in
    `info` (see "Ground truth in `info`" below).

    ## Rewards

    None: every `step` returns reward `0.0`.

    ## Starting State

    From the `reset` seed: the bar (id 0) at 80 % of the world's height, then the balls
    (count uniform in `num_balls`) left to right, with one radius for all (4.5-5.5 % of
    `world_size`), one string length (25-35 % of `world_size`) and masses pi r^2 times a
    factor uniform in [1 - mass_spread, 1 + mass_spread]. All balls hang at rest except the
    striker, raised outwards and moving towards the row.
    `reset(options={"exclude_ids": [k, ...]})` leaves those objects out; every other object
    starts exactly as in the full scene and keeps its id.

    ## Episode End

    The episode never terminates (`terminated` is always False). It is truncated
    (`truncated=True`) at the step that reaches `max_steps` frames after `reset`; `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `num_balls` (tuple[int, int], default `(3, 5)`): inclusive range of the ball count,
      within [2, 6].
    - `mass_spread` (float, default `0.25`): relative spread of the ball masses, in [0, 0.5].

    Keyword arguments of every Pymunk scene, documented on `PymunkScene`: `size`, `max_steps`,
    `render_mode`, `world_size`, `physics_dt`, `frame_skip`, `supersample`. `gravity` is
    fixed at 9.81 m/s^2 by this scene (passing it raises TypeError).

    ## Ground truth in `info`

    As every Pymunk scene: see `PymunkScene`.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/Cradle-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    info["states"]["position"]  # (K, 3) ground-truth positions, K objects (static included)
    obs, reward, terminated, truncated, info = env.step(0)
    info["energy"]["total"], info["collisions"]  # ground truth of the new frame
    env.close()
    ```
    """

    def __init__(self, num_balls: tuple[int, int] = (3, 5), mass_spread: float = 0.25,
                 **kwargs):
        super().__init__(gravity=9.81, **kwargs)
        self.num_balls = check_interval("num_balls", num_balls, 2, 6, integer=True)
        self.mass_spread = check_number("mass_spread", mass_spread, 0.0, 0.5)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        w = self.world_size
        count = int(rng.integers(self.num_balls[0], self.num_balls[1] + 1))
        radius = rng.uniform(0.045, 0.055) * w
        length = rng.uniform(0.25, 0.35) * w
        masses = np.pi * radius**2 * rng.uniform(1 - self.mass_spread, 1 + self.mass_spread,
                                                 size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        from_left = rng.random() < 0.5
        amplitude_share = rng.uniform(0.45, 0.7)
        start_share = rng.uniform(0.3, 1.0)

        gap = 0.002 * w
        row_width = count * 2 * radius + (count - 1) * gap
        room = (w - row_width) / 2 - radius - 0.02 * w  # horizontal swing room beside the row
        amplitude = amplitude_share * np.arcsin(min(1.0, room / length))
        angle = start_share * amplitude
        speed = np.sqrt(2 * self.gravity * length * (np.cos(angle) - np.cos(amplitude)))
        pivot_y = 0.8 * w
        pivots_x = w / 2 - row_width / 2 + radius + np.arange(count) * (2 * radius + gap)
        striker = 0 if from_left else count - 1
        outward = -1.0 if from_left else 1.0
        self.add_wall((pivots_x[0] - radius, pivot_y), (pivots_x[-1] + radius, pivot_y),
                      thickness=0.15)
        for i in range(count):
            swing, velocity = 0.0, (0.0, 0.0)
            if i == striker:  # raised outwards, moving down towards the row
                swing = angle
                velocity = speed * np.array([-outward * np.cos(angle), -np.sin(angle)])
            position = (pivots_x[i] + outward * length * np.sin(swing),
                        pivot_y - length * np.cos(swing))
            object_id = self.add_ball(position, velocity, radius, float(masses[i]),
                                      str(colors[i]), material="metal", elasticity=1.0)
            if object_id is not None:
                self.hang(object_id, (pivots_x[i], pivot_y))
