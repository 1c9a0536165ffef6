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
from .base import check_finite_action
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
    """Pymunk: a red pusher ball (action: force (fx, fy) in [-1, 1]^2 x max_force newtons) and a
    blue target ball on a damped walled table; the goal is a green disc on the floor."""

    def __init__(self, reward: str = "shaped", max_force: float = 30.0, damping: float = 0.5,
                 ball_radius: float = 0.6, goal_radius: float = 1.2, max_steps: int = 128,
                 **kwargs):
        super().__init__(gravity=0.0, max_steps=max_steps, **kwargs)
        self.reward_kind = check_reward(reward)
        self.max_force = float(max_force)
        self.damping = float(damping)
        self.ball_radius = float(ball_radius)
        self.goal_radius = float(goal_radius)
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
    """PyBullet: a red pusher sphere and a blue target cube on a floor; the goal is a flat green
    disc (visual only). Action: force (fx, fy) in [-1, 1]^2 x max_force newtons, applied as its
    impulse over the frame at the frame's start (Bullet clears external forces every substep)."""

    def __init__(self, reward: str = "shaped", max_force: float = 20.0, arena: float = 1.5,
                 goal_radius: float = 0.45, max_steps: int = 128, **kwargs):
        kwargs.setdefault("camera_eye", (0.0, -0.01, 5.5))  # near top-down
        kwargs.setdefault("camera_target", (0.0, 0.0, 0.0))
        super().__init__(max_steps=max_steps, **kwargs)
        self.reward_kind = check_reward(reward)
        self.max_force = float(max_force)
        self.arena = float(arena)
        self.goal_radius = float(goal_radius)
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
