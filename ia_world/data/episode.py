"""The episode contract (DESIGN.md section 3) and simulating one from an env."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the ia_world/ envs)


@dataclass
class Episode:
    """One video plus its ground truth.

    frames (T, H, W, 3) uint8; states[key] (T, K, d) float64 for key in envs.base.STATE_KEYS;
    energy[key] (T,) float64 for key in envs.base.ENERGY_KEYS (None where the source has no
    energy, e.g. CLEVRER);
    collisions [{frame, object_ids, impulse, position, pixel}]; objects [{id, shape, ...}].
    """

    frames: np.ndarray
    objects: list[dict[str, Any]]
    states: dict[str, np.ndarray]
    energy: dict[str, np.ndarray] | None
    collisions: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    # saliency name -> float32 (T, H/8, W/8) per-frame patch means (masking.saliency), or None
    saliency: dict[str, np.ndarray] | None = None

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frames.shape[0])


def make_env(env_id: str, size: int = 64, max_steps: int = 10_000, **kwargs) -> gym.Env:
    """Build an ia_world env (unwrapped: the generator needs the raw ground truth)."""
    return gym.make(env_id, size=size, max_steps=max_steps, **kwargs).unwrapped


def simulate_episode(env: gym.Env, seed: int, num_frames: int,
                     options: dict | None = None, render: bool = True) -> Episode:
    """Reset `env` (a scene env, wrapped or not) with `seed` and record `num_frames` frames with
    their ground truth (the frames `step(0)` would give). render=False: ground truth only, with
    the first frame alone in `frames` (1, H, W, 3) - several times faster."""
    first, info = env.reset(seed=int(seed), options=options)
    frames, states, energy, collisions = env.unwrapped.rollout(num_frames, render)
    if frames is None:
        frames = first[None]
    return Episode(frames, info["objects"], states, energy, collisions,
                   dict(info["meta"], seed=int(seed)))
