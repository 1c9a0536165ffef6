"""Active tasks: the agent pushes a pusher ball with a force so that it knocks a target ball into
a goal region (drawn on the floor, not a physical body).

Both tasks share one reward rule (`push_reward`):
- `shaped`: -(d(target, goal) + 0.5 d(pusher, target)) / scale per step, +10 on success, so the
  reward rises as the target approaches the goal (and as the pusher approaches the target);
- `sparse`: 1 on success, else 0.
An episode terminates when the target's centre is inside the goal; it is truncated at max_steps.
"""

from __future__ import annotations

import numpy as np
import pybullet as p
from gymnasium import spaces

from . import raster
from .base import check_finite_action, check_number
from .bullet_backend import BulletScene
from .pymunk_backend import PymunkScene
from .pymunk_scenes import sample_separated

REWARDS = ("shaped", "sparse")
SUCCESS_BONUS = 10.0
GOAL_COLOR = (170, 225, 170)


def push_reward(kind: str, target_to_goal: float, pusher_to_target: float, scale: float,
                success: bool) -> float:
    """The shaped or sparse reward of a pushing task from its two distances (world units)."""
    if kind == "sparse":
        return float(success)
    shaped = -(target_to_goal + 0.5 * pusher_to_target) / scale
    return shaped + SUCCESS_BONUS * float(success)


def check_reward(reward: str) -> str:
    """Validate the `reward` kwarg of an active task."""
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
    return reward


class PushBall(PymunkScene):
    """Pymunk: push a red pusher ball so that it knocks a blue target ball into a green goal disc.

    ## Description

    An active 2D task (Pymunk, top-down, no gravity): a red pusher ball and a blue target ball
    (radius `ball_radius`, mass 1, elasticity 0.8, no friction) on a table walled in by four
    static walls, with linear damping (`damping`); the goal is a green disc of radius
    `goal_radius` drawn on the floor (not a physical body). The agent pushes the pusher with a
    force; the target only moves when something hits it. Registered as `ia_world/PushBall-v0`
    (`reward="shaped"`) and `ia_world/PushBallSparse-v0` (registered with `reward="sparse"`).

    ## Action Space

    `Box(-1.0, 1.0, (2,), float32)`: a force (fx, fy) in world axes, clipped to [-1, 1] and
    scaled by `max_force` newtons, applied at the pusher's centre on every physics step of the
    coming frame. A non-finite action or one not of shape (2,) raises ValueError.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)`, top-down (x right, y up), goal
    disc included. Ground truth comes in `info` as in the passive Pymunk scenes (`frame`,
    `states`, `energy`, `collisions`; at reset also `objects` and `meta`; see `PymunkScene`).

    ## Rewards

    Computed after the step from d_goal (target centre to goal centre) and d_push (pusher
    centre to target centre), in metres (`push_reward`):

    - `reward="shaped"`: -(d_goal + 0.5 d_push) / world_size, plus 10 when d_goal <
      goal_radius;
    - `reward="sparse"`: 1.0 when d_goal < goal_radius, else 0.0.

    ## Starting State

    From the `reset` seed: the four walls (ids 0-3), the pusher (id 4) and the target (id 5),
    both at rest; the centres of pusher, target and goal are drawn uniformly inside
    [0.5, world_size - 0.5]^2 without overlap (gap 0.5 m). `reset(options={"exclude_ids":
    [...]})` works as in the passive scenes, but leaving out the pusher or the target makes
    `step` raise ValueError.

    ## Episode End

    Termination: the target's centre is inside the goal (d_goal < goal_radius), checked after
    every step. Truncation: `max_steps` frames after `reset` (128 by default). `step` keeps
    simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `reward` (str, default `"shaped"`): `"shaped"` or `"sparse"` (ValueError otherwise).
    - `max_force` (float, default `30.0`): force in newtons of a unit action component.
    - `damping` (float, default `0.5`): Pymunk space damping, the share of velocity kept after
      one second.
    - `ball_radius` (float, default `0.6`): radius in metres of pusher and target.
    - `goal_radius` (float, default `1.2`): radius in metres of the goal disc.
    - `max_steps` (int, default `128`): frames after `reset` at which `step` reports
      `truncated=True`.

    Keyword arguments shared with `PymunkScene` and `SceneEnv`: `size` (int, default `64`,
    frame side in pixels, in [16, 512]), `render_mode` (default `"rgb_array"`, or None),
    `world_size` (float, default `10.0`, world side in metres; also the shaped reward's
    scale), `physics_dt` (float, default `1 / 240`), `frame_skip` (int, default `8`, physics
    steps per frame), `supersample` (int, default `2`, rasteriser anti-aliasing). `gravity` is
    fixed at 0; passing it raises TypeError.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/PushBall-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    env.unwrapped.goal, env.unwrapped.pusher_id, env.unwrapped.target_id  # the task
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["states"]["position"], info["energy"], info["collisions"]  # ground truth
    env.close()
    ```
    """

    def __init__(self, reward: str = "shaped", max_force: float = 30.0, damping: float = 0.5,
                 ball_radius: float = 0.6, goal_radius: float = 1.2, max_steps: int = 128,
                 **kwargs):
        super().__init__(gravity=0.0, max_steps=max_steps, **kwargs)
        self.reward_kind = check_reward(reward)
        self.max_force = check_number("max_force", max_force, 0.0, 1000.0)
        self.damping = check_number("damping", damping, 0.0, 1.0, open_low=True)
        radius_cap = self.world_size / 8  # three discs must fit side by side with a gap
        self.ball_radius = check_number("ball_radius", ball_radius, 0.0, radius_cap, open_low=True)
        self.goal_radius = check_number("goal_radius", goal_radius, 0.0, radius_cap, open_low=True)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.goal = np.zeros(2)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        radii = (self.ball_radius, self.ball_radius, self.goal_radius)
        pusher, target, goal = sample_separated(rng, radii, 0.5, self.world_size - 0.5, gap=0.5)
        self.goal = goal
        self.space.damping = self.damping  # velocity kept after one second
        self.add_border(elasticity=0.8)
        self.pusher_id = self.add_ball(pusher, (0, 0), self.ball_radius, 1.0, "red",
                                       elasticity=0.8)
        self.target_id = self.add_ball(target, (0, 0), self.ball_radius, 1.0, "blue",
                                       elasticity=0.8)

    def _static_layer(self) -> np.ndarray:
        """Walls plus the goal disc, drawn once per reset (the goal lies clear of the walls)."""
        if self._static_canvas is None:
            canvas = super()._static_layer()
            scale = self.size * self.supersample / self.world_size
            raster.draw_disc(canvas, self._to_canvas(self.goal), self.goal_radius * scale,
                             GOAL_COLOR)
        return self._static_canvas

    def _apply_action(self, action) -> None:
        force = np.clip(check_finite_action(action, (2,)), -1.0, 1.0) * self.max_force
        self.apply_force(self.pusher_id, force)

    def _distances(self) -> tuple[float, float]:
        """(target to goal, pusher to target) centre distances in metres."""
        pusher = np.array(self.body_of(self.pusher_id).position)
        target = np.array(self.body_of(self.target_id).position)
        return float(np.hypot(*(target - self.goal))), float(np.hypot(*(pusher - target)))

    def _terminated(self) -> bool:
        return self._distances()[0] < self.goal_radius

    def _reward(self) -> float:
        to_goal, to_target = self._distances()
        return push_reward(self.reward_kind, to_goal, to_target, self.world_size,
                           to_goal < self.goal_radius)


class PushBall3D(BulletScene):
    """PyBullet: push a red sphere so that it knocks a blue target cube into a green goal disc.

    ## Description

    An active 3D task (PyBullet, near top-down camera, gravity on): a red rubber pusher sphere
    (radius 0.2 m, mass 1 kg) and a blue rubber target cube (edge 0.4 m, mass 1 kg) on the
    floor; the goal is a flat green disc of radius `goal_radius` (visual only: no collision
    shape, not listed in `objects`). Registered as `ia_world/PushBall3D-v0`
    (`reward="shaped"`) and `ia_world/PushBall3DSparse-v0` (registered with
    `reward="sparse"`).

    ## Action Space

    `Box(-1.0, 1.0, (2,), float32)`: a force (fx, fy) in world axes, clipped to [-1, 1] and
    scaled by `max_force` newtons, applied as its impulse over the frame at the frame's start:
    the pusher's horizontal velocity grows by force x physics_dt x frame_skip / mass (Bullet
    clears external forces every substep). A non-finite action or one not of shape (2,) raises
    ValueError.

    ## Observation Space

    The rendered frame: `Box(0, 255, (size, size, 3), uint8)` (TinyRenderer, perspective).
    Ground truth comes in `info` as in the passive PyBullet scenes (`frame`, `states`,
    `energy`, `collisions`; at reset also `objects` and `meta`; see `BulletScene`).

    ## Rewards

    Computed after the step from d_goal (target centre to goal centre) and d_push (pusher
    centre to target centre), both planar (x, y) distances in metres (`push_reward`):

    - `reward="shaped"`: -(d_goal + 0.5 d_push) / (2 arena), plus 10 when d_goal <
      goal_radius;
    - `reward="sparse"`: 1.0 when d_goal < goal_radius, else 0.0.

    ## Starting State

    From the `reset` seed: the floor (id 0), the pusher (id 1) and the target (id 2), both at
    rest on the floor; the horizontal centres of pusher, target and goal are drawn uniformly in
    [-arena, arena]^2 without overlap (gap 0.3 m). `reset(options={"exclude_ids": [...]})`
    works as in the passive scenes, but leaving out the pusher or the target makes `step`
    raise ValueError.

    ## Episode End

    Termination: the target's centre is horizontally inside the goal (d_goal < goal_radius),
    checked after every step. Truncation: `max_steps` frames after `reset` (128 by default).
    `step` keeps simulating if called again (no wrapper enforces the end).

    ## Arguments

    - `reward` (str, default `"shaped"`): `"shaped"` or `"sparse"` (ValueError otherwise).
    - `max_force` (float, default `20.0`): force in newtons of a unit action component.
    - `arena` (float, default `1.5`): half side in metres of the square holding the start
      positions and the goal; 2 arena is the shaped reward's scale.
    - `goal_radius` (float, default `0.45`): radius in metres of the goal disc.
    - `max_steps` (int, default `128`): frames after `reset` at which `step` reports
      `truncated=True`.

    Keyword arguments shared with `BulletScene` and `SceneEnv`: `size` (int, default `64`,
    frame side in pixels, in [16, 512]), `render_mode` (default `"rgb_array"`, or None),
    `gravity` (float, default `9.81`), `physics_dt` (float, default `1 / 240`), `frame_skip`
    (int, default `8`, physics steps per frame), `camera_eye` (default `(0.0, -0.01, 5.5)`
    here, near top-down), `camera_target` (default `(0.0, 0.0, 0.0)` here), `fov` (float,
    default `45.0` degrees), `shadow` (bool, default `False`), `release_distance` (float,
    default `0.005` m a touching pair must part before a new collision counts).

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/PushBall3D-v0", size=64)
    obs, info = env.reset(seed=0)  # obs: uint8 (64, 64, 3)
    info["objects"], info["meta"]  # scene description, physics and camera facts
    env.unwrapped.goal, env.unwrapped.pusher_id, env.unwrapped.target_id  # the task
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["states"]["position"], info["energy"], info["collisions"]  # ground truth
    env.close()
    ```
    """

    def __init__(self, reward: str = "shaped", max_force: float = 20.0, arena: float = 1.5,
                 goal_radius: float = 0.45, max_steps: int = 128, **kwargs):
        kwargs.setdefault("camera_eye", (0.0, -0.01, 5.5))  # near top-down
        kwargs.setdefault("camera_target", (0.0, 0.0, 0.0))
        super().__init__(max_steps=max_steps, **kwargs)
        self.reward_kind = check_reward(reward)
        self.max_force = check_number("max_force", max_force, 0.0, 1000.0)
        self.arena = check_number("arena", arena, 0.5, 10.0)
        self.goal_radius = check_number("goal_radius", goal_radius, 0.0, self.arena / 2,
                                        open_low=True)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.goal = np.zeros(2)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        radii = (0.2, 0.2, self.goal_radius)
        pusher, target, goal = sample_separated(rng, radii, -self.arena, self.arena, gap=0.3)
        self.goal = goal
        self.add_floor()
        self.pusher_id = self.add_sphere((*pusher, 0.2), (0, 0, 0), 0.2, 1.0, "red")
        self.target_id = self.add_cube((*target, 0.2), (0, 0, 0), 0.4, 1.0, "blue")
        disc = p.createVisualShape(p.GEOM_CYLINDER, radius=self.goal_radius, length=0.002,
                                   rgbaColor=[c / 255 for c in GOAL_COLOR] + [1.0],
                                   physicsClientId=self._client)
        p.createMultiBody(baseMass=0.0, baseVisualShapeIndex=disc,
                          basePosition=[*goal, 0.001], physicsClientId=self._client)

    def _body(self, object_id: int) -> int:
        return self._body_ids[[r["id"] for r in self._records].index(object_id)]

    def _apply_action(self, action) -> None:
        force = np.clip(check_finite_action(action, (2,)), -1.0, 1.0) * self.max_force
        body = self._body(self.pusher_id)
        velocity, spin = p.getBaseVelocity(body, physicsClientId=self._client)
        mass = p.getDynamicsInfo(body, -1, physicsClientId=self._client)[0]
        kick = force * self.physics_dt * self.frame_skip / mass
        p.resetBaseVelocity(body, [velocity[0] + kick[0], velocity[1] + kick[1], velocity[2]],
                            spin, physicsClientId=self._client)

    def _distances(self) -> tuple[float, float]:
        """(target to goal, pusher to target) planar centre distances in metres."""
        pusher, target = (np.array(p.getBasePositionAndOrientation(
            self._body(i), physicsClientId=self._client)[0][:2])
            for i in (self.pusher_id, self.target_id))
        return float(np.hypot(*(target - self.goal))), float(np.hypot(*(pusher - target)))

    def _terminated(self) -> bool:
        return self._distances()[0] < self.goal_radius

    def _reward(self) -> float:
        to_goal, to_target = self._distances()
        return push_reward(self.reward_kind, to_goal, to_target, 2 * self.arena,
                           to_goal < self.goal_radius)
