"""`ia-world evaluate ckpt=<dir>`: energy probe, latent entropy, causal QA and mask hit-rate.

Probe and QA head are fitted on a training split and scored on a held-out split; both splits
are simulated from their own base seeds (or read from generated datasets), and no seed of
either split may appear in pretraining. Results go to metrics.json under "eval".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from einops import reduce
from omegaconf import MISSING
from tqdm import tqdm

from ia_world.atomic import atomic_write_json
from ia_world.checkpoint import (
    CONFIG_FILE,
    ENCODER_WEIGHTS,
    METRICS_FILE,
    load_encoder,
    read_json,
    resolve_checkpoint,
)
from ia_world.config import check_choice, check_path, check_range, to_dataclass, validate_tree
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.generator import EnvConfig
from ia_world.data.shards import EpisodeStore, episode_seed
from ia_world.data.sources import pretraining_seeds
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.eval.mask_metrics import episode_batch, strategy_report
from ia_world.eval.probe import clip_targets, probe_all
from ia_world.eval.qa_generator import generate_questions
from ia_world.eval.qa_head import QAHeadConfig, evaluate_qa
from ia_world.eval.spectrum import gaussian_entropy, rankme, singular_values
from ia_world.masking import MaskConfig

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """`ia-world evaluate`: which checkpoint, on which splits, with which probe and QA budgets."""

    env: EnvConfig = field(default_factory=EnvConfig)
    qa: QAHeadConfig = field(default_factory=QAHeadConfig)
    ckpt: str = MISSING  # checkpoint dir, or a run dir (its `latest` checkpoint)
    out: str | None = None  # where metrics.json goes (default: the checkpoint dir)
    train_episodes: int = 96  # probe-fitting / QA-training split
    heldout_episodes: int = 96  # held-out split (R^2, entropy, QA accuracy, mask hit-rate)
    train_seed: int = 1001  # base seeds: episode k has seed episode_seed(base, k); they must
    heldout_seed: int = 2002  # differ from each other and from pretraining (checked)
    train_data: str | None = None  # a generated dataset instead of simulating the train split
    heldout_data: str | None = None  # a generated dataset instead of simulating held-out
    horizon: int = 16  # predictive QA: frames simulated past the clip's end
    folds: int = 5  # ridge alpha: k-fold CV on the training split
    batch_size: int = 32  # clips per encoder batch
    device: str = "cpu"  # cpu | cuda
    encoder_weights: str = "target"  # target (EMA, as I-JEPA) | encoder (online)

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        if self.encoder_weights not in ENCODER_WEIGHTS:
            raise ConfigError(f"encoder_weights={self.encoder_weights!r} is not one of "
                              f"{ENCODER_WEIGHTS}")
        check_path("ckpt", self.ckpt)
        if self.out is not None:
            check_path("out", self.out)
        check_range("folds", self.folds, 2, 100)
        check_range("train_episodes", self.train_episodes, 2 * self.folds, 10**7)
        check_range("heldout_episodes", self.heldout_episodes, 2, 10**7)
        check_range("horizon", self.horizon, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_choice("device", self.device, ("cpu", "cuda"))


def check_disjoint(splits: dict[str, set[int]]) -> None:
    """Raise DataError when two splits share an episode seed."""
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = splits[a] & splits[b]
            if shared:
                raise DataError(f"{len(shared)} episode seeds of the {a} split are also in the "
                                f"{b} split (e.g. {min(shared)}); use another base seed")


def split_episodes(path: str | None, count: int, base_seed: int, env_cfg: EnvConfig,
                   frames: int, size: int) -> list[Episode]:
    """`count` episodes: read from a generated dataset, or simulated from episode_seed(base, k)."""
    if path is None:
        env = make_env(env_cfg.id, size=size, **env_cfg.kwargs)
        return [simulate_episode(env, episode_seed(base_seed, k), frames)
                for k in tqdm(range(count), desc=f"simulate (seed {base_seed})", leave=False)]
    store = EpisodeStore(path)
    if len(store) < count:
        raise DataError(f"{path}: {len(store)} episodes, {count} requested")
    store.check_clips(frames, size)
    return [store[k] for k in range(count)]


@torch.no_grad()
def encode_episodes(encoder, episodes: list[Episode], batch_size: int) -> np.ndarray:
    """Frozen latents (E, N, D) of the episodes' first grid.frames frames."""
    frames = encoder.grid.frames
    batches = [episodes[i:i + batch_size] for i in range(0, len(episodes), batch_size)]
    return np.concatenate([
        encoder.encode(np.stack([ep.frames[:frames] for ep in batch])).cpu().numpy()
        for batch in tqdm(batches, desc="encode", leave=False)])


def mask_report(config: dict, episodes: list[Episode], grid) -> dict | None:
    """Hit-rate and selectivity of the checkpoint's masking strategy on held-out clips."""
    if "masking" not in config:
        return None
    clips, collisions, moving = episode_batch(episodes, grid)
    return strategy_report(to_dataclass(config["masking"], MaskConfig), clips, collisions,
                           moving, grid)


def measure(cfg: EvalConfig) -> dict:
    """All metrics of one checkpoint; returns the dict written under metrics.json["eval"]."""
    checkpoint = resolve_checkpoint(cfg.ckpt)
    config = read_json(checkpoint / CONFIG_FILE)
    encoder = load_encoder(checkpoint, cfg.device, cfg.encoder_weights)
    grid = encoder.grid
    train = split_episodes(cfg.train_data, cfg.train_episodes, cfg.train_seed, cfg.env,
                           grid.frames, grid.size)
    heldout = split_episodes(cfg.heldout_data, cfg.heldout_episodes, cfg.heldout_seed, cfg.env,
                             grid.frames, grid.size)
    check_disjoint({"probe/QA training": {ep.meta["seed"] for ep in train},
                    "held-out": {ep.meta["seed"] for ep in heldout},
                    "pretraining": pretraining_seeds(config)})
    train_latents = encode_episodes(encoder, train, cfg.batch_size)       # E N D
    heldout_latents = encode_episodes(encoder, heldout, cfg.batch_size)
    train_pooled = reduce(train_latents, "e n d -> e d", "mean")
    heldout_pooled = reduce(heldout_latents, "e n d -> e d", "mean")
    probe = probe_all(train_pooled, [clip_targets(ep, grid.frames) for ep in train],
                      heldout_pooled, [clip_targets(ep, grid.frames) for ep in heldout],
                      folds=cfg.folds, seed=cfg.train_seed)
    env = make_env(cfg.env.id, size=grid.size, **cfg.env.kwargs)
    qa = evaluate_qa(generate_questions(env, train, grid.frames, cfg.horizon, cfg.train_seed),
                     generate_questions(env, heldout, grid.frames, cfg.horizon, cfg.heldout_seed),
                     train_latents, heldout_latents, cfg.qa)
    return {"run": {"checkpoint": str(checkpoint),
                    "strategy": config.get("masking", {}).get("strategy", "untrained"),
                    "seed": config.get("seed"), "steps": config.get("steps", 0),
                    "weights": cfg.encoder_weights},
            "splits": {"train_seed": cfg.train_seed, "heldout_seed": cfg.heldout_seed,
                       "train_episodes": len(train), "heldout_episodes": len(heldout)},
            "probe": probe,
            "spectrum": {"rankme": rankme(heldout_pooled),
                         "rankme_centered": rankme(heldout_pooled - heldout_pooled.mean(0)),
                         "gaussian_entropy": gaussian_entropy(heldout_pooled),
                         "singular_values": singular_values(heldout_pooled).tolist()},
            "qa": qa, "masking": mask_report(config, heldout, grid)}


def eval_key(weights: str) -> str:
    """metrics.json key of an evaluation: "eval" (EMA target) or "eval_<weights>"."""
    return "eval" if weights == "target" else f"eval_{weights}"


def evaluate(cfg: EvalConfig) -> dict:
    """Evaluate a checkpoint; writes <out or ckpt>/metrics.json and returns the results.

    Results go under "eval" (EMA target weights) or "eval_encoder" (online encoder weights), so
    evaluating one never overwrites the other.
    """
    validate_tree(cfg)
    eval_cfg = cfg
    out = Path(eval_cfg.out) if eval_cfg.out else resolve_checkpoint(eval_cfg.ckpt)
    path = out / METRICS_FILE
    metrics = read_json(path) if path.is_file() else {}  # checked before minutes of evaluation
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(metrics).__name__}")
    result = measure(eval_cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**metrics, eval_key(eval_cfg.encoder_weights): result})
    log.info("wrote %s", path)
    return result
