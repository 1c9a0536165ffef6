"""Gymnasium env `ia_world/PhyreLite-v0`: one-step episodes, the action places the red ball."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .scene import (
    MAX_STEPS,
    SCENE,
    SOLVE_STEPS,
    STEPS_PER_SECOND,
    Puzzle,
    attempt,
    build_space,
    placement_error,
    render,
)
from .templates import TEMPLATES, VARIANTS_PER_TEMPLATE, make_puzzle, parse_task_id


def puzzle_objects(puzzle: Puzzle) -> list[dict[str, Any]]:
    """Ground truth of the initial scene: one record per body (role, colour, geometry, pose)."""
    return [{"id": i, "role": b.role, "color": b.color, "dynamic": b.dynamic,
             "position": list(b.position), "angle": b.angle,
             "parts": [[p[0], *(np.asarray(v, np.float64).tolist() for v in p[1:])]
                       for p in b.parts]}
            for i, b in enumerate(puzzle.bodies)]


class PhyreLiteEnv(gym.Env):
    """PHYRE-Lite puzzle as a one-step episode.

    reset(seed, options={"task": "template:variant", "record": bool}) -> (initial frame, info);
    without a task the seeded rng picks one. step(action (x, y, r) in [0, 1]^3) simulates the
    whole rollout and returns (final frame, 1.0 if solved, terminated=True, False, info) with
    info = {task, valid, reason, solved, steps, contact_steps, states, frames (T, H, W, 3) when
    recording}. An invalid placement is reported (valid=False) and not simulated.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": STEPS_PER_SECOND // 6}

    def __init__(self, size: int = 64, task: str | None = None, record: bool = False,
                 frame_stride: int = 6, render_mode: str | None = "rgb_array"):
        if not 16 <= size <= 512:
            raise ValueError(f"size must be in [16, 512], got {size}")
        self.size, self.task, self.record = int(size), task, bool(record)
        self.frame_stride = int(frame_stride)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.puzzle: Puzzle | None = None
        self._space = None
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Build the puzzle (options['task'], the constructor's task, or a seeded pick)."""
        super().reset(seed=seed)
        options = dict(options or {})
        task = options.get("task", self.task)
        if task is None:
            template = sorted(TEMPLATES)[int(self.np_random.integers(len(TEMPLATES)))]
            variant = int(self.np_random.integers(VARIANTS_PER_TEMPLATE))
            self.puzzle = make_puzzle(template, variant)
        else:
            self.puzzle = parse_task_id(task)
        self.record = bool(options.get("record", self.record))
        self._space = build_space(self.puzzle)
        self._done = False
        info = {"task": self.puzzle.task_id, "objects": puzzle_objects(self.puzzle),
                "meta": {"scene_px": SCENE, "steps_per_second": STEPS_PER_SECOND,
                         "max_steps": MAX_STEPS, "solve_steps": SOLVE_STEPS}}
        return render(self._space, self.size), info

    def step(self, action):
        """Place the ball and simulate; the episode ends after this one step."""
        if self._done:
            raise RuntimeError("call reset() before step(): PHYRE-Lite episodes are one step")
        self._done = True
        action = np.asarray(action, np.float64)
        reason = placement_error(self._space, action)
        outcome = attempt(self._space, action, self.size if self.record else 0,
                          self.frame_stride)
        info = {"task": self.puzzle.task_id, "valid": outcome.valid, "reason": reason,
                "solved": outcome.solved, "steps": outcome.steps,
                "contact_steps": outcome.contact_steps,
                "states": outcome.states[-1] if outcome.states else []}
        if outcome.frames is not None:
            info["frames"] = outcome.frames
            frame = outcome.frames[-1].copy()
        else:
            frame = render(self._space, self.size)
        return frame, float(outcome.solved), True, False, info

    def render(self):
        """The initial scene of the current puzzle (uint8 (size, size, 3))."""
        if self.render_mode is None or self._space is None:
            return None
        return render(self._space, self.size)
