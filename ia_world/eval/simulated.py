"""Simulated evaluation splits: scenes held at a fixed body count, episodes from base seeds, and
their clip targets. Shared by `evaluate`, the learning curves of `pretrain` and the benchmarks.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ia_world.config import check_range
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.generator import EnvConfig
from ia_world.data.shards import episode_seed
from ia_world.errors import ConfigError, DataError
from ia_world.eval.features import dynamic_indices
from ia_world.eval.probe import MIN_TRAIN, clip_targets

COUNT_KWARGS = ("num_balls", "num_bodies")  # env arguments (low, high) setting the body count
EXTRA_BODY_KWARGS = {"stack_chance": 0.0}  # env arguments that add bodies beyond the count


@dataclass
class FixedSplitConfig:
    """Simulated splits with every scene at `count` bodies: probes count cannot explain, and QA."""

    count: int = 5  # bodies in every scene of these splits
    train_episodes: int = 1600  # ~4.6 questions per clip; ~850 predictive: the ceiling's >= 0.8
    heldout_episodes: int = 256  # >= 1,000 held-out questions
    train_seed: int = 3003  # base seed of the fixed-count training split (held-out: the role's)

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        check_range("count", self.count, 1, 64)
        check_range("train_episodes", self.train_episodes, MIN_TRAIN, 10**7)
        check_range("heldout_episodes", self.heldout_episodes, 2, 10**7)


def count_kwargs(env_cfg: EnvConfig, count: int) -> dict:
    """The env's constructor arguments that hold its number of bodies at `count`, or ConfigError.

    The body-count argument, plus any argument that adds bodies beyond it set to add none
    (Gravity2D's box tower: `stack_chance=0`).
    """
    env_class = type(make_env(env_cfg.id, **env_cfg.kwargs))
    names = inspect.signature(env_class.__init__).parameters
    found = [key for key in COUNT_KWARGS if key in names]
    if not found:
        raise ConfigError(f"fixed.count: {env_cfg.id} has no body-count argument "
                          f"({' / '.join(COUNT_KWARGS)}); it cannot hold the count fixed")
    extra = {key: value for key, value in EXTRA_BODY_KWARGS.items() if key in names}
    return {found[0]: [count, count], **extra}


def fixed_count_env(env_cfg: EnvConfig, count: int, size: int):
    """The env with every scene at exactly `count` bodies, or ConfigError if it cannot."""
    try:
        return make_env(env_cfg.id, size=size, **{**env_cfg.kwargs,
                                                  **count_kwargs(env_cfg, count)})
    except ValueError as error:
        raise ConfigError(f"fixed.count={count}: {env_cfg.id} cannot hold it ({error})") from None


def check_count(episodes: list[Episode], count: int) -> None:
    """DataError unless every episode has exactly `count` dynamic bodies."""
    counts = sorted({len(dynamic_indices(ep)) for ep in episodes})
    if counts != [count]:
        raise DataError(f"fixed-count split: body counts {counts}, expected only {count}")


def simulate_split(env, count: int, base_seed: int, frames: int) -> list[Episode]:
    """`count` episodes simulated from episode_seed(base_seed, k)."""
    return [simulate_episode(env, episode_seed(base_seed, k), frames)
            for k in tqdm(range(count), desc=f"simulate (seed {base_seed})", leave=False)]


def target_arrays(episodes: list[Episode], frames: int, names: tuple[str, ...]) -> dict:
    """name -> (E,) array of clip targets."""
    targets = [clip_targets(ep, frames) for ep in episodes]
    return {name: np.array([t[name] for t in targets]) for name in names}
