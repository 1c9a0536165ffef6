"""Learning curves: cheap validation probes of a model while it trains (`pretrain probe_every=`).

At chosen steps `pretrain` scores its EMA target encoder on the VALIDATION role's splits
(ia_world/eval/splits.py): ridge R^2 of held-out mean speed, kinetic and total energy and the
collision count on `cfg.env` scenes held at a fixed body count, from the time-keeping features
`evaluate` uses; the centred RankMe of the held-out clips' mean-pooled tokens; and the collision
probe's |log(m1 / m2)| R^2 on two-ball clips with one collision. Step 0 is the floor (the
architecture at its initialisation, before any update). The splits are simulated once per run
(or read from `cache`), so one probe costs encoding ~1,000 clips and a few ridge fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ia_world.checkpoint import clip_batches, encode_batches
from ia_world.config import check_path, check_range
from ia_world.data.episode import Episode
from ia_world.data.generator import EnvConfig
from ia_world.eval.collision_probe import (
    CollisionProbeConfig,
    collision_splits,
    collision_targets,
    split_seeds,
)
from ia_world.eval.features import split_clips, token_features
from ia_world.eval.probe import fit_probes, r2
from ia_world.eval.simulated import FixedSplitConfig, fixed_count_env, simulate_split, target_arrays
from ia_world.eval.spectrum import centred_rankme
from ia_world.eval.split_cache import cached_episodes
from ia_world.eval.splits import check_disjoint, heldout_seeds
from ia_world.eval.stats import paired_bootstrap_cis
from ia_world.tokens import TokenGrid

CURVE_TARGETS = ("mean_speed", "kinetic_energy", "total_energy", "num_collisions")
CURVE_FIELDS = (*(f"probe_{name}" for name in CURVE_TARGETS), "probe_mass_ratio",
                "probe_rankme_centred")
ENCODE_BATCH = 50  # clips per encoder batch


@dataclass
class CurveConfig:
    """Sizes of the learning curves' validation splits (seeds: the val role's)."""

    train_episodes: int = 1200  # fixed-count probe-fitting episodes (300 starve the ridge probe)
    heldout_episodes: int = 200  # fixed-count held-out episodes (val role)
    collision_train: int = 128  # two-ball one-collision probe-fitting clips
    collision_heldout: int = 64  # two-ball one-collision held-out clips (val role)
    cache: str | None = None  # keep the simulated fixed-count splits here (none: simulate)

    def validate(self) -> None:
        """Raise ConfigError on sizes out of range."""
        for key in ("train_episodes", "collision_train"):
            check_range(key, getattr(self, key), 8, 10**6)
        for key in ("heldout_episodes", "collision_heldout"):
            check_range(key, getattr(self, key), 2, 10**6)
        if self.cache is not None:
            check_path("cache", self.cache)


@dataclass
class CurveSplits:
    """Clips (E, T, H, W, 3) and targets of the curves' training and held-out splits."""

    clips: tuple[np.ndarray, np.ndarray]
    targets: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
    collision_clips: tuple[np.ndarray, np.ndarray]
    mass_ratio: tuple[np.ndarray, np.ndarray]  # |log(m1 / m2)| per clip


def curve_episodes(cfg: CurveConfig, env: EnvConfig,
                   grid: TokenGrid) -> tuple[list[Episode], list[Episode]]:
    """The fixed-count probe-fitting and val held-out episodes, simulated (or read from
    cfg.cache) at the model's clip size."""
    fixed, seeds = FixedSplitConfig(), heldout_seeds("val")
    scene = fixed_count_env(env, fixed.count, grid.size)

    def simulated(count: int, base: int) -> list[Episode]:
        key = {"env": env.id, "kwargs": env.kwargs, "count": fixed.count, "episodes": count,
               "base": base, "frames": grid.frames, "size": grid.size}
        return cached_episodes(cfg.cache, key,
                               lambda: simulate_split(scene, count, base, grid.frames))

    return (simulated(cfg.train_episodes, fixed.train_seed),
            simulated(cfg.heldout_episodes, seeds.fixed_heldout))


def curve_splits(cfg: CurveConfig, env: EnvConfig, grid: TokenGrid,
                 pretraining: frozenset[int] = frozenset()) -> CurveSplits:
    """Simulate (or read from cfg.cache) the curves' splits at the model's clip size; DataError if
    two splits, or a split and the `pretraining` episode seeds, share an episode."""
    episodes = curve_episodes(cfg, env, grid)
    seeds = heldout_seeds("val")
    collision = collision_splits(
        CollisionProbeConfig(train_episodes=cfg.collision_train,
                             heldout_episodes=cfg.collision_heldout),
        seeds.collision_heldout, grid.frames, grid.size)
    pairs = (collision["train"], collision["held-out"])
    check_disjoint({"curve fixed-count training": {ep.meta["seed"] for ep in episodes[0]},
                    "curve val fixed-count held-out": {ep.meta["seed"] for ep in episodes[1]},
                    **{f"curve collision {name}": split_seeds(clips)
                       for name, clips in collision.items()},
                    "pretraining": set(pretraining)})
    return CurveSplits(
        clips=tuple(split_clips(split, grid) for split in episodes),
        targets=tuple(target_arrays(split, grid.frames, CURVE_TARGETS) for split in episodes),
        collision_clips=tuple(split_clips([c.episode for c in split], grid) for split in pairs),
        mass_ratio=tuple(collision_targets(split)["mass_ratio"] for split in pairs))


@torch.no_grad()
def clip_features(encoder: torch.nn.Module, clips: np.ndarray, grid: TokenGrid) -> np.ndarray:
    """Time-keeping features (E, 2D) of uint8 clips under an encoder module (any device)."""
    device = next(encoder.parameters()).device
    tokens = encode_batches(lambda frames: encoder(frames.to(device)),
                            clip_batches(clips, ENCODE_BATCH), desc="curve probe")   # E N D
    return token_features(tokens.cpu().numpy(), grid)


def curve_metrics(encoder: torch.nn.Module, splits: CurveSplits, grid: TokenGrid) -> dict:
    """`probe_*` -> value (CURVE_FIELDS) of an encoder module on the curves' splits."""
    train, heldout = (clip_features(encoder, clips, grid) for clips in splits.clips)
    scores = fit_probes(train, splits.targets[0], heldout, splits.targets[1])
    pair_train, pair_heldout = (clip_features(encoder, clips, grid)
                                for clips in splits.collision_clips)
    mass = fit_probes(pair_train, {"mass_ratio": splits.mass_ratio[0]}, pair_heldout,
                      {"mass_ratio": splits.mass_ratio[1]})["mass_ratio"]
    pooled = heldout[:, :heldout.shape[1] // 2]                              # E D: token means
    return {**{f"probe_{name}": scores[name]["r2"] for name in CURVE_TARGETS},
            "probe_mass_ratio": mass["r2"], "probe_rankme_centred": centred_rankme(pooled)}


def curve_step_cis(true: np.ndarray, predicted: dict[int, np.ndarray],
                   seed: int = 0) -> dict[int, dict]:
    """A curve with intervals: per step (the first, e.g. 0, is the floor) the held-out R^2 and
    95% paired-bootstrap CIs (held-out episodes resampled once for every step) of
    R^2(step) - R^2(previous step) and R^2(step) - R^2(first step)."""
    steps = sorted(predicted)
    true = np.asarray(true, float)

    def differences(episodes: np.ndarray) -> dict[str, float]:
        scores = [r2(true[episodes], predicted[step][episodes]) for step in steps]
        return {**{f"{step} - previous": scores[k] - scores[k - 1]
                   for k, step in enumerate(steps) if k},
                **{f"{step} - floor": scores[k] - scores[0] for k, step in enumerate(steps) if k}}

    cis = paired_bootstrap_cis(differences, len(true), seed)
    return {step: {"r2": r2(true, predicted[step]),
                   "vs_previous": cis.get(f"{step} - previous"),
                   "vs_floor": cis.get(f"{step} - floor")} for step in steps}
