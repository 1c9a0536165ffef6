"""One base for every scene: seeded reset, rendering, and the ground truth of DESIGN.md section 3.

A backend (Pymunk, PyBullet) subclasses `SceneEnv` and implements the `_backend_*` hooks; a scene
subclasses a backend and implements `_populate`. An active variant overrides `action_space`,
`_apply_action` and `_reward`. A frame's ground truth comes from `_backend_states` and
`_backend_energy`, unless the backend overrides `_backend_snapshot` and `_backend_ground_truth` to
assemble it for many frames at once (what `rollout` profits from).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STATE_KEYS = ("position", "velocity", "orientation", "angular_velocity", "pixel", "bbox")
ENERGY_TERMS = ("translational", "rotational", "potential")
ENERGY_KEYS = ("kinetic", *ENERGY_TERMS, "total")


class SceneEnv(gym.Env):
    """Passive physics scene rendering RGB frames, with per-frame ground truth in `info`.

    reset(seed, options) -> (frame uint8 (H, W, 3), info); `options` may hold
    `exclude_ids` (object ids left out of the scene, for counterfactual re-simulation).
    info = {frame, states: {key: (K, d) float arrays}, energy: {kinetic, translational,
    rotational, potential, total}, collisions: [{frame, object_ids, impulse, position, pixel}],
    and at reset also objects: [{id, shape, color, material, size, mass, static}] and meta}.

    Every registered scene documents itself in the layout of Gymnasium's classic-control
    environments (see `CartPoleEnv`): a one-line summary, then `## Description`,
    `## Action Space`, `## Observation Space`, `## Rewards`, `## Starting State`,
    `## Episode End`, `## Arguments` (every constructor keyword, those of this base and of the
    backend included) and `## Example`; `tests/test_env_docs.py` checks it. See
    `envs.pymunk_scenes.Billiards` for a passive scene, `envs.pushball.PushBall` for an active one.

    ## Arguments (every scene)

    - `size` (int, default `64`): side of the square RGB frame in pixels, in [16, 512]
      (ValueError otherwise).
    - `max_steps` (int, default `64`): frames after `reset` at which `step` reports
      `truncated=True`.
    - `render_mode` (str | None, default `"rgb_array"`): `"rgb_array"` or None (then `render()`
      returns None); any other value raises ValueError.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    backend = "none"

    def __init__(self, size: int = 64, max_steps: int = 64, render_mode: str | None = "rgb_array"):
        check_number("size", size, 16, 512, integer=True)
        check_number("max_steps", max_steps, 1, 10**7, integer=True)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}; only 'rgb_array'")
        self.size = int(size)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space = spaces.Discrete(1)  # passive: the only action is the no-op 0
        self.objects: list[dict[str, Any]] = []
        self._frame_index = 0
        self._last_frame: np.ndarray | None = None

    # ---- hooks for backends and scenes -------------------------------------------------
    def _backend_reset(self, rng: np.random.Generator, options: dict) -> list[dict]:
        """Build a fresh world; return the object descriptors (static ones included)."""
        raise NotImplementedError

    def _backend_advance(self) -> list[dict]:
        """Advance one frame; return collision events {object_ids, impulse, position, pixel}."""
        raise NotImplementedError

    def _backend_render(self) -> np.ndarray:
        """Render the current world as uint8 (size, size, 3)."""
        raise NotImplementedError

    def _backend_states(self) -> dict[str, np.ndarray]:
        """Per-object state arrays keyed by STATE_KEYS, each (K, d), ordered as self.objects."""
        raise NotImplementedError

    def _backend_energy(self) -> dict[str, float]:
        """Energy terms {translational, rotational, potential} of the dynamic bodies."""
        raise NotImplementedError

    def _backend_snapshot(self) -> Any:
        """What the current frame's ground truth needs, read now (default: states and energy)."""
        return self._backend_states(), self._backend_energy()

    def _backend_ground_truth(self, snapshots: list) -> tuple[dict[str, np.ndarray],
                                                              dict[str, np.ndarray]]:
        """States {key: (T, K, d)} and energy terms {term: (T,)} of T frames' snapshots."""
        states = {k: np.array([s[k] for s, _ in snapshots], np.float64) for k in STATE_KEYS}
        terms = {t: np.array([e[t] for _, e in snapshots], np.float64) for t in ENERGY_TERMS}
        return states, terms

    def _backend_meta(self) -> dict[str, Any]:
        """Backend facts for `meta`: physics dt, frame skip, camera."""
        return {}

    def _backend_close(self) -> None:
        """Release the backend's resources; must be safe to call twice."""

    def _new_id(self) -> int | None:
        """Next object id for a scene's `add_*` call; None when `exclude_ids` leaves it out.

        Ids are handed out in the order objects are added, so an excluded object keeps its id
        reserved and every other object keeps its id in the counterfactual scene.
        """
        object_id = self._next_object_id
        self._next_object_id += 1
        return None if object_id in self._excluded_ids else object_id

    def _apply_action(self, action) -> None:
        """Passive scenes ignore the no-op action; active variants apply forces here."""

    def _reward(self) -> float:
        """Passive scenes have no reward."""
        return 0.0

    def _terminated(self) -> bool:
        """Passive scenes never terminate; they are truncated at max_steps."""
        return False

    # ---- Gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Rebuild the scene from the seed; return the first frame and its ground truth."""
        super().reset(seed=seed)
        self._backend_close()
        options = dict(options or {})
        self._excluded_ids = check_exclude_ids(options.get("exclude_ids", ()))
        self._next_object_id = 0
        self.objects = self._backend_reset(self.np_random, options)
        unknown = sorted(self._excluded_ids - set(range(self._next_object_id)))
        if unknown:
            raise ValueError(f"exclude_ids: {unknown} are not object ids of this scene "
                             f"(0..{self._next_object_id - 1})")
        self._frame_index = 0
        info = self._info([])
        info["objects"] = copy.deepcopy(self.objects)
        info["meta"] = self.meta()
        return self._observe(), info

    def step(self, action):
        """Apply the action and advance one frame: (frame, reward, terminated, truncated, info)."""
        obs, events = self._advance(action)
        truncated = self._frame_index >= self.max_steps
        return obs, float(self._reward()), bool(self._terminated()), truncated, self._info(events)

    def rollout(self, num_frames: int, render: bool = True
                ) -> tuple[np.ndarray | None, dict[str, np.ndarray], dict[str, np.ndarray],
                           list[dict]]:
        """Record the current frame and `num_frames - 1` more under the no-op action 0.

        Returns frames (T, H, W, 3) uint8 (None with render=False: ground truth only, the
        physics unchanged, and only the last frame drawn), states {key: (T, K, d)}, energy
        {key: (T,)} and the collision events: what `step(0)` reports frame by frame
        (truncation aside), with the ground truth assembled once for all frames.
        """
        if self._last_frame is None:
            raise RuntimeError("call reset() before rollout()")
        frames, snapshots, collisions = [self._last_frame], [self._backend_snapshot()], []
        for _ in range(num_frames - 1):
            frame, events = self._advance(0, render)
            frames.append(frame)
            snapshots.append(self._backend_snapshot())
            collisions.extend(events)
        states, energy = self._ground_truth(snapshots)
        if not render:
            self._observe()  # the current frame stays the last one drawn
            return None, states, energy, collisions
        return np.stack(frames), states, energy, collisions

    def render(self):
        """The current frame (a fresh uint8 array)."""
        if self.render_mode is None:
            return None
        return self._observe()

    def close(self):
        """Release the physics backend (safe to call more than once)."""
        self._backend_close()

    # ---- ground truth ------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Episode metadata: env id, render size and backend facts."""
        env_id = self.spec.id if self.spec is not None else type(self).__name__
        return {"env_id": env_id, "backend": self.backend, "render_size": self.size,
                "max_steps": self.max_steps, **self._backend_meta()}

    def energy(self) -> dict[str, float]:
        """Kinetic (translational + rotational), potential and total energy of the scene."""
        return self._frame_ground_truth()[1]

    def _advance(self, action, render: bool = True) -> tuple[np.ndarray | None, list[dict]]:
        """Apply the action, advance one frame and render it (unless not `render`):
        (frame or None, collision events)."""
        if not self.objects:
            raise RuntimeError("call reset() before step()")
        self._apply_action(action)
        events = merge_pair_events(self._backend_advance())
        self._frame_index += 1
        for event in events:
            event["frame"] = self._frame_index
        return (self._observe() if render else None), events

    def _observe(self) -> np.ndarray:
        frame = self._backend_render()
        assert frame.shape == (self.size, self.size, 3) and frame.dtype == np.uint8
        self._last_frame = frame
        return frame

    def _ground_truth(self, snapshots: list) -> tuple[dict[str, np.ndarray],
                                                      dict[str, np.ndarray]]:
        """States {key: (T, K, d)} and energy {key: (T,)} of T frames' snapshots."""
        states, terms = self._backend_ground_truth(snapshots)
        kinetic = terms["translational"] + terms["rotational"]
        return states, {"kinetic": kinetic, **terms, "total": kinetic + terms["potential"]}

    def _frame_ground_truth(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """States {key: (K, d)} and energy {key: float} of the current frame."""
        states, energy = self._ground_truth([self._backend_snapshot()])
        return ({k: states[k][0] for k in STATE_KEYS},
                {k: float(energy[k][0]) for k in ENERGY_KEYS})

    def _info(self, events: list[dict]) -> dict[str, Any]:
        states, energy = self._frame_ground_truth()
        return {"frame": self._frame_index, "states": states, "energy": energy,
                "collisions": [dict(e) for e in events]}


def object_record(object_id: int, shape: str, color: str, material: str, size: float,
                  mass: float, static: bool, **dims) -> dict[str, Any]:
    """One entry of the episode's `objects` list (static bodies get mass 0, as in JSON).

    `size` is the largest extent; `dims` are the full dimensions (radius, width, height, ...)
    and the moment of inertia, which rotational energy needs.
    """
    return {"id": int(object_id), "shape": shape, "color": color, "material": material,
            "size": float(size), "mass": 0.0 if static else float(mass),
            "static": bool(static), **{k: to_plain(v) for k, v in dims.items()}}


def to_plain(value) -> float | list[float]:
    """A float, or a list of floats for a vector (JSON-able)."""
    array = np.asarray(value, np.float64)
    return float(array) if array.ndim == 0 else array.tolist()


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_plain_name(name) -> bool:
    """Whether `name` can be one path component: letters, digits, '_', '-', '.', not starting
    with '.' (no '/', no '..', nothing hidden), at most 100 characters."""
    return isinstance(name, str) and PLAIN_NAME.fullmatch(name) is not None


def check_number(name: str, value, low: float | None = None, high: float | None = None,
                 integer: bool = False, open_low: bool = False) -> float:
    """Validate a numeric kwarg: ValueError naming it unless `value` is a finite number (an
    integer with `integer`) in [low, high] (low excluded with `open_low`)."""
    kind = "an integer" if integer else "a finite number"
    if (isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number)
            or not np.isfinite(value) or (integer and not float(value).is_integer())):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if (low is not None and (value <= low if open_low else value < low)) or (
            high is not None and value > high):
        raise ValueError(f"{name} must be in {'(' if open_low else '['}{low}, "
                         f"{'inf' if high is None else high}], got {value!r}")
    return int(value) if integer else float(value)


def check_interval(name: str, pair, low: float, high: float, integer: bool = False) -> tuple:
    """Validate a (min, max) kwarg: ValueError naming it unless low <= min <= max <= high."""
    kind = "integers" if integer else "finite numbers"
    problem = ValueError(f"{name} must be (min, max) {kind} with {low} <= min <= max <= {high}, "
                         f"got {pair!r}")
    if isinstance(pair, str | bytes) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise problem
    try:
        values = tuple(check_number(name, v, integer=integer) for v in pair)
    except ValueError:
        raise problem from None
    if not low <= values[0] <= values[1] <= high:
        raise problem
    return values


def check_triple(name: str, value) -> list[float]:
    """Validate an (x, y, z) kwarg of finite numbers: ValueError naming it otherwise."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValueError(f"{name} must be (x, y, z), got {value!r}")
    return [check_number(f"{name}[{i}]", v) for i, v in enumerate(value)]


def check_flag(name: str, value) -> bool:
    """Validate a boolean kwarg: ValueError unless it is True or False (not "maybe", not 1)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_exclude_ids(ids) -> set[int]:
    """The `exclude_ids` option as a set; ValueError unless it is a list of integers >= 0."""
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise ValueError(f"exclude_ids must be a list of object ids, got {ids!r}")
    ids = list(ids)
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int | np.integer) or i < 0]
    if bad:
        raise ValueError(f"exclude_ids: {bad} are not object ids (integers >= 0)")
    return {int(i) for i in ids}


def check_finite_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """The action as a float64 array; ValueError unless it has `shape` and is finite."""
    array = np.asarray(action, np.float64)
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise ValueError(f"action must be finite of shape {shape}, got {action!r}")
    return array


def merge_pair_events(events: list[dict]) -> list[dict]:
    """One collision event per object pair in a frame: the first, with the pair's total impulse."""
    merged: dict[tuple[int, ...], dict] = {}
    for event in events:
        pair = tuple(sorted(event["object_ids"]))
        if pair in merged:
            merged[pair]["impulse"] += event["impulse"]
        else:
            merged[pair] = event
    return list(merged.values())
