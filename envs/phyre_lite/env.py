"""Gymnasium env `ia_world/PhyreLite-v0`: one-step episodes, the action places the red ball."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..base import check_flag, check_number
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


RESET_OPTIONS = {"task", "record"}


def check_task(task) -> str | None:
    """A task id 'template:variant' of a known template (or None); ValueError naming it."""
    if task is None:
        return None
    if not isinstance(task, str):
        raise ValueError(f"task must be a 'template:variant' string, got {task!r}")
    try:
        parse_task_id(task)
    except KeyError as error:
        raise ValueError(f"task {task!r}: {error.args[0]}") from None
    return task


class PhyreLiteEnv(gym.Env):
    """PHYRE-Lite puzzle as a one-step episode: place a red ball so the green body meets the goal.

    ## Description

    Pymunk puzzles in the spirit of PHYRE's BALL tier, in a 256 x 256 px scene (y up, gravity
    500 px/s^2): 10 templates x 100 variants, task ids `"template:variant"` (e.g.
    `"ramp_roll:007"`). The single action places a red ball; the world then runs at 60 steps
    per second for at most 1000 steps, and the puzzle is solved when a green body touches the
    goal body (blue if dynamic, purple if static) for 180 consecutive steps (3 s).

    ## Action Space

    `Box(0.0, 1.0, (3,), float32)`: (x, y, r); the ball's centre is (x, y) x 256 px and its
    radius 2 + r x 30 px. Actions are not clipped: a non-finite action, a ball leaving the
    scene or one overlapping a body is an invalid placement, reported (`valid=False`,
    `reason`) and not simulated.

    ## Observation Space

    `Box(0, 255, (size, size, 3), uint8)`. `reset` returns the initial scene. `step` returns
    the last recorded frame when recording (`record=True`), else the initial scene again
    (without the action ball: the rollout runs on a copy of the puzzle's world).

    ## Rewards

    `1.0` if the puzzle is solved, else `0.0` (an invalid placement scores 0.0).

    ## Starting State

    `reset` builds the puzzle named by `options["task"]`, else the constructor's `task`, else
    one drawn with the `reset` seed (template and variant uniformly). A variant's bodies are
    fixed by the task id (built from a fixed seed), so the seed only picks the task.
    `options["record"]` (bool) overrides the constructor's `record`.

    ## Episode End

    Every episode is one step: `step` returns `terminated=True`, `truncated=False`; calling
    `step` again before `reset` raises RuntimeError.

    ## Arguments

    - `size` (int, default `64`): side of the square frame in pixels, in [16, 512] (ValueError
      otherwise).
    - `task` (str | None, default `None`): task id `"template:variant"` to play on every reset
      (unknown ids raise KeyError at reset); None picks a task from the seed.
    - `record` (bool, default `False`): record frames of the rollout (returned in
      `info["frames"]`) and the dynamic bodies' states.
    - `frame_stride` (int, default `6`): simulation steps between recorded frames (10 fps).
    - `render_mode` (str | None, default `"rgb_array"`): with None, `render()` returns None;
      otherwise `render()` gives the current puzzle's initial scene.

    ## Ground truth in `info`

    At `reset`: `task` (id), `objects` (one record per body: `id`, `role` (static, dynamic,
    green, goal), `color`, `dynamic`, `position` and `angle` in scene px / rad, `parts` (circle
    or convex polygon pieces in body-local px)) and `meta` (`scene_px`, `steps_per_second`,
    `max_steps`, `solve_steps`). At `step`: `task`, `valid`, `reason` (None or why the
    placement is invalid), `solved`, `steps` (simulated steps; the rollout stops early once
    solved or once everything has settled), `contact_steps` (longest run of goal contact, the
    settled remainder counted), `states` (when recording, the dynamic bodies' `color`,
    `position`, `angle`, `velocity` at the last recorded frame; else `[]`) and, when
    recording a valid placement, `frames` (T, size, size, 3) uint8 from the initial scene on.

    ## Example

    ```python
    import gymnasium
    import ia_world  # registers the ia_world/ ids

    env = gymnasium.make("ia_world/PhyreLite-v0", size=64)
    obs, info = env.reset(seed=0, options={"task": "ramp_roll:007", "record": True})
    info["task"], info["objects"], info["meta"]  # the puzzle's bodies, physics constants
    obs, reward, terminated, truncated, info = env.step([0.5, 0.8, 0.3])
    info["valid"], info["solved"], info["frames"].shape  # (T, 64, 64, 3) when recorded
    ```
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": STEPS_PER_SECOND // 6}

    def __init__(self, size: int = 64, task: str | None = None, record: bool = False,
                 frame_stride: int = 6, render_mode: str | None = "rgb_array"):
        check_number("size", size, 16, 512, integer=True)
        self.size, self.task, self.record = int(size), check_task(task), check_flag("record",
                                                                                    record)
        self.frame_stride = check_number("frame_stride", frame_stride, 1, 1000, integer=True)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.puzzle: Puzzle | None = None
        self._space = None
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Build the puzzle (options['task'], the constructor's task, or a seeded pick)."""
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        options = dict(options or {})
        unknown = sorted(set(options) - RESET_OPTIONS, key=str)
        if unknown:
            raise ValueError(f"options: unknown {unknown} (known: {sorted(RESET_OPTIONS)})")
        task = check_task(options.get("task", self.task))
        self.record = check_flag("options['record']", options.get("record", self.record))
        if task is None:
            template = sorted(TEMPLATES)[int(self.np_random.integers(len(TEMPLATES)))]
            variant = int(self.np_random.integers(VARIANTS_PER_TEMPLATE))
            self.puzzle = make_puzzle(template, variant)
        else:
            self.puzzle = parse_task_id(task)
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
