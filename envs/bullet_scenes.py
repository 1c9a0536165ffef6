"""3D scenes on PyBullet: each one only says what is in the world (the backend does the rest)."""

from __future__ import annotations

import numpy as np

from .base import check_interval, check_number
from .bullet_backend import MATERIALS, BulletScene
from .pymunk_scenes import sample_separated
from .raster import COLOR_NAMES

SHAPES = ("sphere", "cube", "cylinder")


def add_object(scene: BulletScene, shape: str, position, velocity, size: float, mass: float,
               color: str, material: str, orientation=(0, 0, 0),
               angular_velocity=(0, 0, 0)) -> int | None:
    """Add a sphere (diameter `size`), cube (edge `size`) or cylinder (diameter = height)."""
    common = {"mass": mass, "color": color, "material": material, "orientation": orientation,
              "angular_velocity": angular_velocity}
    if shape == "sphere":
        return scene.add_sphere(position, velocity, size / 2, **common)
    if shape == "cube":
        return scene.add_cube(position, velocity, size, **common)
    return scene.add_cylinder(position, velocity, size / 2, size, **common)


class Tabletop3D(BulletScene):
    """CLEVRER-like: spheres, cubes and upright cylinders sliding and colliding on a floor.

    ## Description

    A passive 3D scene (PyBullet): some objects rest or move inside the arena, others enter
    from outside the view; every moving object is aimed (with jitter) at a resting one, so most
    episodes hold collisions. Spheres start rolling without slipping; cubes and cylinders slide
    and spin about the vertical. Materials are CLEVRER's rubber (restitution 0.6, friction
    0.8) and metal (0.85, 0.3).

    ## Action Space

    Passive scene: `Discrete(1)`, whose only action is the no-op `0`. `step` ignores its action
    entirely (any value is accepted and has no effect); the scene evolves on its own.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, a perspective view (PyBullet's
    TinyRenderer) from a fixed camera (`camera_eye`, `camera_target`, `fov`; z up). Ground truth
    comes in `info` (see "Ground truth in `info`" below).

    ## Rewards

    None: every `step` returns reward `0.0`.

    ## Starting State

    From the `reset` seed: the static floor (id 0, top face z = 0), then the objects, whose
    count is uniform in `num_objects`; of them, a count uniform in `num_entering` (at most all
    but one) start on the circle of radius `entry_radius` and the rest without overlap in the
    square [-arena, arena]^2. Each has a random shape (sphere, cube, cylinder), colour and
    material, a size 0.45-0.75 m, density 2-6 and a random yaw, and stands 1 mm above the
    floor. The entering objects and each inside one with probability 1/2 (the first surely
    when none enters) move at a speed uniform in `speed` towards a randomly drawn inside
    object (Gaussian jitter, sd 0.12 rad); moving cubes and cylinders spin about z at a rate
    uniform in [-3, 3] rad/s.
    `reset(options={"exclude_ids": [k, ...]})` leaves those objects out; every other object
    keeps its id.

    ## Episode End

    The episode never terminates (`terminated` is always False). It is truncated
    (`truncated=True`) at the step that reaches `max_steps` frames after `reset`; `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `num_objects` (tuple[int, int], default `(3, 6)`): inclusive range of the object count.
    - `num_entering` (tuple[int, int], default `(1, 2)`): inclusive range of the count of
      objects entering from outside the arena.
    - `speed` (tuple[float, float], default `(2.5, 4.5)`): range of initial speeds in m/s.
    - `arena` (float, default `1.5`): half side in metres of the square holding the inside
      objects.
    - `entry_radius` (float, default `2.8`): distance in metres from the origin at which the
      entering objects start.

    Keyword arguments of every PyBullet scene, documented on `BulletScene`: `size`,
    `max_steps`, `render_mode`, `gravity`, `physics_dt`, `frame_skip`, `camera_eye`,
    `camera_target`, `fov`, `shadow`, `release_distance`. This scene's camera defaults:
    `camera_eye=(0.0, -4.2, 3.8)`, `camera_target=(0.0, -0.1, 0.0)`.

    ## Ground truth in `info`

    As every PyBullet scene: see `BulletScene`.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/Tabletop3D-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    info["states"]["position"]  # (K, 3) ground-truth positions, K objects (floor included)
    obs, reward, terminated, truncated, info = env.step(0)
    info["energy"]["total"], info["collisions"]  # ground truth of the new frame
    env.close()  # disconnects the PyBullet client
    ```
    """

    def __init__(self, num_objects: tuple[int, int] = (3, 6),
                 num_entering: tuple[int, int] = (1, 2),
                 speed: tuple[float, float] = (2.5, 4.5), arena: float = 1.5,
                 entry_radius: float = 2.8, **kwargs):
        kwargs.setdefault("camera_eye", (0.0, -4.2, 3.8))
        kwargs.setdefault("camera_target", (0.0, -0.1, 0.0))
        super().__init__(**kwargs)
        self.num_objects = check_interval("num_objects", num_objects, 1, 12, integer=True)
        self.num_entering = check_interval("num_entering", num_entering, 0, 12, integer=True)
        self.speed = check_interval("speed", speed, 0.0, 30.0)
        self.arena = check_number("arena", arena, 0.5, 10.0)
        self.entry_radius = check_number("entry_radius", entry_radius, 0.5, 20.0)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        count = int(rng.integers(self.num_objects[0], self.num_objects[1] + 1))
        entering = min(int(rng.integers(self.num_entering[0], self.num_entering[1] + 1)),
                       count - 1)
        inside = count - entering
        shapes = rng.choice(SHAPES, size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        materials = rng.choice(list(MATERIALS), size=count)
        sizes = rng.uniform(0.45, 0.75, size=count)
        densities = rng.uniform(2.0, 6.0, size=count)
        inner = sample_separated(rng, sizes[:inside] / 2, -self.arena, self.arena, gap=0.2)
        entry_angles = rng.uniform(0, 2 * np.pi, size=entering)
        outer = self.entry_radius * np.stack([np.cos(entry_angles), np.sin(entry_angles)], 1)
        positions = np.concatenate([inner, outer])
        moving = np.concatenate([rng.random(inside) < 0.5, np.ones(entering, bool)])
        moving[0] = moving[0] or inside == count  # at least one mover
        targets = rng.integers(0, inside, size=count)
        speeds = rng.uniform(*self.speed, size=count)
        jitter = rng.normal(0.0, 0.12, size=count)
        yaws = rng.uniform(0, 2 * np.pi, size=count)
        spins = rng.uniform(-3.0, 3.0, size=count)
        self.add_floor()
        for i in range(count):
            aim = positions[targets[i]] - positions[i]
            if targets[i] == i or not np.any(aim):
                aim = -positions[i] + 1e-3
            angle = np.arctan2(aim[1], aim[0]) + jitter[i]
            planar = moving[i] * speeds[i] * np.array([np.cos(angle), np.sin(angle), 0.0])
            radius = sizes[i] / 2
            if shapes[i] == "sphere":  # rolling without slipping: w = z x v / r
                angular_velocity = np.cross([0.0, 0.0, 1.0], planar) / radius
            else:
                angular_velocity = np.array([0.0, 0.0, moving[i] * spins[i]])
            volume = sizes[i] ** 3 * {"sphere": np.pi / 6, "cube": 1.0, "cylinder": np.pi / 4}[
                shapes[i]]
            add_object(self, str(shapes[i]), (*positions[i], radius + 1e-3), planar, sizes[i],
                       float(densities[i] * volume), str(colors[i]), str(materials[i]),
                       orientation=(0.0, 0.0, yaws[i]), angular_velocity=angular_velocity)


class Drop3D(BulletScene):
    """Objects of random shape and pose dropped from staggered heights onto a floor.

    ## Description

    A passive 3D scene (PyBullet): objects dropped from staggered heights onto each other and
    the floor: potential energy turns into kinetic energy, then into bounces, tumbling and
    rest.

    ## Action Space

    Passive scene: `Discrete(1)`, whose only action is the no-op `0`. `step` ignores its action
    entirely (any value is accepted and has no effect); the scene evolves on its own.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, a perspective view (PyBullet's
    TinyRenderer) from a fixed camera (`camera_eye`, `camera_target`, `fov`; z up). Ground truth
    comes in `info` (see "Ground truth in `info`" below).

    ## Rewards

    None: every `step` returns reward `0.0`.

    ## Starting State

    From the `reset` seed: the static floor (id 0, top face z = 0), then the objects, whose
    count is uniform in `num_objects`, each with a random shape (sphere, cube, cylinder),
    colour and material, a size 0.4-0.6 m, mass 0.5-2 kg, a horizontal position uniform in
    [-spread, spread]^2, Euler angles uniform in [-pi, pi], zero velocity and a Gaussian spin
    (sd 1 rad/s per axis), one above the other at heights whose bounding spheres never overlap
    (random gaps of 0.05-0.4 m).
    `reset(options={"exclude_ids": [k, ...]})` leaves those objects out; every other object
    keeps its id.

    ## Episode End

    The episode never terminates (`terminated` is always False). It is truncated
    (`truncated=True`) at the step that reaches `max_steps` frames after `reset`; `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `num_objects` (tuple[int, int], default `(3, 5)`): inclusive range of the object count.
    - `spread` (float, default `0.3`): half side in metres of the square of horizontal start
      positions.

    Keyword arguments of every PyBullet scene, documented on `BulletScene`: `size`,
    `max_steps`, `render_mode`, `gravity`, `physics_dt`, `frame_skip`, `camera_eye`,
    `camera_target`, `fov`, `shadow`, `release_distance`. This scene's camera defaults:
    `camera_eye=(0.0, -6.0, 4.6)`, `camera_target=(0.0, 0.0, 1.6)`.

    ## Ground truth in `info`

    As every PyBullet scene: see `BulletScene`.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/Drop3D-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    info["states"]["position"]  # (K, 3) ground-truth positions, K objects (floor included)
    obs, reward, terminated, truncated, info = env.step(0)
    info["energy"]["total"], info["collisions"]  # ground truth of the new frame
    env.close()  # disconnects the PyBullet client
    ```
    """

    def __init__(self, num_objects: tuple[int, int] = (3, 5), spread: float = 0.3, **kwargs):
        kwargs.setdefault("camera_eye", (0.0, -6.0, 4.6))
        kwargs.setdefault("camera_target", (0.0, 0.0, 1.6))
        super().__init__(**kwargs)
        self.num_objects = check_interval("num_objects", num_objects, 1, 12, integer=True)
        self.spread = check_number("spread", spread, 0.0, 5.0)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        count = int(rng.integers(self.num_objects[0], self.num_objects[1] + 1))
        shapes = rng.choice(SHAPES, size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        materials = rng.choice(list(MATERIALS), size=count)
        sizes = rng.uniform(0.4, 0.6, size=count)
        masses = rng.uniform(0.5, 2.0, size=count)
        planar = rng.uniform(-self.spread, self.spread, size=(count, 2))
        # stacked bounding spheres (radius size * sqrt(3) / 2) with random gaps never overlap
        reach = sizes * np.sqrt(3) / 2
        gaps = rng.uniform(0.05, 0.4, size=count)
        heights = np.cumsum(gaps + reach + np.concatenate([[0.0], reach[:-1]]))
        orientations = rng.uniform(-np.pi, np.pi, size=(count, 3))
        spins = rng.normal(0.0, 1.0, size=(count, 3))
        self.add_floor()
        for i in range(count):
            add_object(self, str(shapes[i]), (*planar[i], heights[i]), (0.0, 0.0, 0.0),
                       sizes[i], float(masses[i]), str(colors[i]), str(materials[i]),
                       orientation=orientations[i], angular_velocity=spins[i])
