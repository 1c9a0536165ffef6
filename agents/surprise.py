"""Violation of expectation: world-model prediction error on possible/impossible episode pairs.

A pair shares puzzle, placement and seed; in the impossible twin the green body teleports by
`offset` px mid-rollout (everything else untouched). Surprise = the largest per-window L1 error of
the world model's teacher-forced next-window prediction (IntPhys style), each window's error
divided by its median on held-out training episodes (`surprise.reference`, saved with the world
model): the first rollout window is always the hardest to predict, and unscaled it hides any
later violation. Reported: pairwise
accuracy (impossible scored above its possible twin) and AUROC over all episodes. Pairs come from
the fold's TEST tasks, which the world model never saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymunk
import torch
from omegaconf import MISSING
from tqdm import tqdm

from agents.placements import Placement, episode_windows, frame_with_ball, sample_placement
from agents.world_model import check_zero_shot
from agents.world_model_net import WorldModel, load_world_model, window_errors
from envs.phyre_lite.scene import GREEN, attempt, build_space
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.checkpoint import METRICS_FILE, FrozenEncoder, load_encoder, write_metrics
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.errors import ConfigError
from ia_world.eval.stats import auroc
from ia_world.runlock import check_out_dir


@dataclass
class SurpriseConfig:
    """`ia-world surprise`: teleport pairs from a fold's TEST tasks, scored by a world model."""

    encoder: str = MISSING  # checkpoint or run directory of the frozen encoder
    world_model: str = MISSING  # directory written by `ia-world world_model`
    split: str = "cross"  # within | cross
    fold: int = 0  # 0..4
    pairs: int = 40  # (possible, impossible) episode pairs
    windows: int = 5  # as the world model was trained
    frame_stride: int = 10  # physics steps per recorded frame
    offset: float = 60.0  # green body teleport distance in scene px
    out: str = "runs/surprise"  # metrics.json goes here
    seed: int = 0  # pair sampling seed

    def validate(self) -> None:
        """Range-check the keys."""
        check_path("encoder", self.encoder)
        check_path("world_model", self.world_model)
        check_path("out", self.out)
        check_choice("split", self.split, SPLITS)
        check_range("fold", self.fold, 0, NUM_FOLDS - 1)
        check_range("pairs", self.pairs, 1, 10**6)
        check_range("windows", self.windows, 3, 64)
        check_range("frame_stride", self.frame_stride, 1, 100)
        check_range("offset", self.offset, 1.0, 1000.0)


def record_rollout(space, action, frames: int, frame_stride: int, size: int,
                   teleport: tuple[int, np.ndarray] | None = None) -> np.ndarray:
    """(frames, H, W, 3) of the placed ball's rollout; optionally move the green body at a frame.

    The puzzle simulation loop itself (envs.phyre_lite.scene.simulate), run for exactly
    `frames` recorded frames without early stops; teleport = (frame index, offset in px).
    """
    def move_green(moved: pymunk.Space, k: int) -> None:
        if teleport is not None and k - 1 == teleport[0]:
            green = next(b for b in moved.bodies
                         if any(s.collision_type == GREEN for s in b.shapes))
            green.position = tuple(np.array(green.position) + teleport[1])
            moved.reindex_shapes_for_body(green)

    outcome = attempt(space, action, record_size=size, frame_stride=frame_stride,
                      until_done=False, max_steps=frames * frame_stride, on_frame=move_green)
    return outcome.frames[1:]


def make_pairs(tasks: list[str], cfg: SurpriseConfig, clip_frames: int,
               size: int) -> list[tuple[Placement, Placement]]:
    """(possible, impossible) episode pairs; the teleport happens inside rollout window 2."""
    rng = np.random.default_rng(cfg.seed)
    frames = (cfg.windows - 1) * clip_frames
    pairs = []
    for _ in tqdm(range(cfg.pairs), desc="pairs", leave=False):
        space = build_space(parse_task_id(tasks[int(rng.integers(len(tasks)))]))
        action = sample_placement(rng, space, 0.5)
        angle = rng.uniform(0, 2 * np.pi)
        teleport = (clip_frames + clip_frames // 2, cfg.offset * np.array([np.cos(angle),
                                                                           np.sin(angle)]))
        initial = frame_with_ball(space, action, size)
        pairs.append(tuple(
            Placement(initial, record_rollout(space, action, frames, cfg.frame_stride, size, t),
                    action, False)
            for t in (None, teleport)))
    return pairs


def surprise_scores(model: WorldModel, windows: torch.Tensor, reference: torch.Tensor,
                    actions: torch.Tensor | None = None) -> np.ndarray:
    """Max over windows of the next-window error relative to its reference: (E K P D) -> (E,)."""
    return (window_errors(model, windows, actions) / reference).max(1).values.numpy()


def score_pairs(encoder: FrozenEncoder, model: WorldModel, reference: torch.Tensor,
                pairs: list[tuple[Placement, Placement]]) -> dict[str, float]:
    """Pairwise accuracy and AUROC of the surprise scores of (possible, impossible) pairs."""
    windows = len(reference) + 1
    episodes = [e for pair in pairs for e in pair]
    latents = episode_windows(encoder, episodes, windows, model.cfg.tokens_per_window)
    actions = torch.tensor(np.stack([e.action for e in episodes]), dtype=torch.float32) \
        if model.cfg.action_dim else None
    scores = surprise_scores(model, latents, reference, actions)
    possible, impossible = scores[0::2], scores[1::2]
    labels = np.tile([0, 1], len(pairs))
    return {"pairs": len(pairs), "pairwise_accuracy": float((impossible > possible).mean()),
            "auroc": auroc(scores, labels)}


def surprise(config: SurpriseConfig) -> dict[str, float]:
    """Score teleport pairs made from the fold's test tasks; print and save the metrics."""
    validate_tree(config)
    check_out_dir(config.out)  # before any work
    encoder = load_encoder(config.encoder)
    model, extra = load_world_model(config.world_model)
    reference = extra["surprise.reference"]
    if config.windows != len(reference) + 1:
        raise ConfigError(f"windows={config.windows} but the world model in {config.world_model} "
                          f"was trained on {len(reference) + 1}")
    _, test_tasks = split_tasks(config.split, config.fold)
    check_zero_shot(config.world_model, extra, test_tasks)
    pairs = make_pairs(test_tasks, config, encoder.grid.frames, encoder.grid.size)
    metrics = score_pairs(encoder, model, reference, pairs)
    write_metrics(Path(config.out) / METRICS_FILE, {"config": as_dict(config), "metrics": metrics})
    print(json.dumps(metrics, indent=1))
    return metrics
