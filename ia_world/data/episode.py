"""The episode contract (DESIGN.md section 3) and simulating one from an env."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the ia_world/ envs)
from envs.base import STATE_KEYS

ENERGY_KEYS = ("kinetic", "translational", "rotational", "potential", "total")


@dataclass
class Episode:
    """One video plus its ground truth.

    frames (T, H, W, 3) uint8; states[key] (T, K, d) float64 for key in STATE_KEYS;
    energy[key] (T,) float64 (None where the source has no energy, e.g. CLEVRER);
    collisions [{frame, object_ids, impulse, position, pixel}]; objects [{id, shape, ...}].
    """

    frames: np.ndarray
    objects: list[dict[str, Any]]
    states: dict[str, np.ndarray]
    energy: dict[str, np.ndarray] | None
    collisions: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frames.shape[0])


def make_env(env_id: str, size: int = 64, max_steps: int = 10_000, **kwargs) -> gym.Env:
    """Build an ia_world env (unwrapped: the generator needs the raw ground truth)."""
    return gym.make(env_id, size=size, max_steps=max_steps, **kwargs).unwrapped


def simulate_episode(env: gym.Env, seed: int, num_frames: int,
                     options: dict | None = None) -> Episode:
    """Reset `env` with `seed` and record `num_frames` frames with their ground truth."""
    frame, info = env.reset(seed=int(seed), options=options)
    objects, meta = info["objects"], dict(info["meta"], seed=int(seed))
    frames, infos, collisions = [frame], [info], []
    for _ in range(num_frames - 1):
        frame, _, _, _, info = env.step(0)
        frames.append(frame)
        infos.append(info)
        collisions.extend(info["collisions"])
    states = {k: np.stack([i["states"][k] for i in infos]) for k in STATE_KEYS}
    energy = {k: np.array([i["energy"][k] for i in infos], np.float64) for k in ENERGY_KEYS}
    return Episode(np.stack(frames), objects, states, energy, collisions, meta)
