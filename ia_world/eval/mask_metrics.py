"""Mask hit-rate and selectivity (DESIGN.md section 6) on generated episodes with ground truth.

Collision tokens: the tubelets holding a collision's pixel within +-1 frame of the collision.
Moving tokens: the tubelets whose patch overlaps, in any of the tubelet's frames, the ground-truth
pixel bounding box of a dynamic object that moved at least `MOVING_PX` pixels since the previous
frame. Selectivity = AUROC of a score between the collision tokens and the other moving tokens,
computed per clip (its ranking is what the masking uses) and averaged over the clips that hold both.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ia_world.data.episode import Episode
from ia_world.eval.stats import auroc
from ia_world.masking import MaskConfig, make_mask_fn, saliency
from ia_world.masking.saliency import SALIENCY
from ia_world.tokens import TokenGrid

MOVING_PX = 0.25  # pixels per frame: slower objects count as still
HIT_RATIOS = (0.05, 0.1, 0.4)


def collision_tokens(episode: Episode, grid: TokenGrid) -> np.ndarray:
    """Bool (N,): tokens holding a collision's pixel in the collision frame or a neighbour."""
    tokens = np.zeros(grid.num_tokens, bool)
    for event in episode.collisions:
        x, y = event["pixel"]
        for frame in range(event["frame"] - 1, event["frame"] + 2):
            if 0 <= frame < grid.frames:
                tokens[grid.token_of(frame, x, y)] = True
    return tokens


def moving_tokens(episode: Episode, grid: TokenGrid) -> np.ndarray:
    """Bool (N,): tokens overlapped by the bbox of a dynamic object that is moving."""
    bbox = episode.states["bbox"][: grid.frames]  # (T K 4): left, top, right, bottom in pixels
    pixel = episode.states["pixel"][: grid.frames]  # (T K 2)
    step = np.linalg.norm(np.diff(pixel, axis=0), axis=-1)  # (T-1 K)
    speed = np.concatenate([step[:1], step])  # (T K): frame 0 takes the first step's speed
    dynamic = ~np.array([obj["static"] for obj in episode.objects])
    mover = (speed >= MOVING_PX) & dynamic[None]  # (T K)
    lo = np.arange(0, grid.size, grid.patch, dtype=np.float64)  # (S,) patch starts
    hi = lo + grid.patch
    cols = (bbox[..., 0, None] < hi) & (bbox[..., 2, None] > lo)  # (T K S)
    rows = (bbox[..., 1, None] < hi) & (bbox[..., 3, None] > lo)  # (T K S)
    covered = rows[..., :, None] & cols[..., None, :] & mover[..., None, None]  # (T K S S)
    per_frame = covered.any(axis=1)  # (T S S)
    t_tokens = grid.frames // grid.tubelet_t
    per_token = per_frame.reshape(t_tokens, grid.tubelet_t, *per_frame.shape[1:]).any(axis=1)
    return per_token.reshape(-1)


def hit_rate(mask: torch.Tensor, collisions: np.ndarray) -> float:
    """Share of collision tokens hidden by a mask: mask (B, N) bool, collisions (B, N) bool."""
    hidden = mask.cpu().numpy() & collisions
    return float(hidden.sum() / max(collisions.sum(), 1))


def selectivity(scores: torch.Tensor, collisions: np.ndarray, moving: np.ndarray) -> float:
    """Mean per-clip AUROC of scores (B, N) between collision tokens and other moving tokens."""
    scores = scores.float().cpu().numpy()
    aurocs = []
    for clip_scores, positive, move in zip(scores, collisions, moving):
        negative = move & ~positive
        if positive.any() and negative.any():
            labels = np.concatenate([np.ones(positive.sum()), np.zeros(negative.sum())])
            values = np.concatenate([clip_scores[positive], clip_scores[negative]])
            aurocs.append(auroc(values, labels))
    return float(np.mean(aurocs)) if aurocs else float("nan")


def pooled_selectivity(scores: torch.Tensor, collisions: np.ndarray, moving: np.ndarray) -> float:
    """AUROC of scores (B, N) pooled over all clips' collision vs other moving tokens."""
    scores = scores.float().cpu().numpy()
    negative = moving & ~collisions
    labels = np.concatenate([np.ones(collisions.sum()), np.zeros(negative.sum())])
    return auroc(np.concatenate([scores[collisions], scores[negative]]), labels)


def episode_batch(episodes: list[Episode], grid: TokenGrid):
    """Clips uint8 (B, T, H, W, 3) plus collision and moving tokens (B, N) of some episodes."""
    clips = torch.from_numpy(np.stack([ep.frames[: grid.frames] for ep in episodes]))
    collisions = np.stack([collision_tokens(ep, grid) for ep in episodes])
    moving = np.stack([moving_tokens(ep, grid) for ep in episodes])
    return clips, collisions, moving


def strategy_report(cfg: MaskConfig, clips: torch.Tensor, collisions: np.ndarray,
                    moving: np.ndarray, grid: TokenGrid, seed: int = 0) -> dict[str, float]:
    """Hit-rate at HIT_RATIOS and selectivity of one strategy on a batch of clips.

    Strategies without a saliency (random_tube, multiblock) are scored by their mask at cfg.ratio.
    """
    generator = torch.Generator().manual_seed(seed)
    report = {}
    for ratio in HIT_RATIOS:
        mask_fn = make_mask_fn(dataclasses.replace(cfg, ratio=ratio))
        report[f"hit@{ratio}"] = hit_rate(mask_fn(clips, grid, generator), collisions)
    if cfg.strategy in SALIENCY:
        scores = saliency(cfg.strategy, clips, grid)
    else:
        scores = make_mask_fn(cfg)(clips, grid, generator).float()
    report["selectivity"] = selectivity(scores, collisions, moving)
    return report
