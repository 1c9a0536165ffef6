"""Mask visualisation: a clip with each strategy's hidden tokens overlaid, side by side."""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from einops import rearrange, repeat

from ia_world.atomic import atomic_write_bytes
from ia_world.masking import MaskConfig, make_mask_fn
from ia_world.tokens import TokenGrid

HIDDEN_TINT = np.array([255, 40, 40], np.float32)  # red: tokens hidden from the context encoder
TINT_ALPHA = 0.55
GAP_PX = 4


def token_mask_pixels(mask: np.ndarray, grid: TokenGrid) -> np.ndarray:
    """A token mask bool (N,) in (t h w) order as a per-pixel mask bool (T, H, W)."""
    t, h, w = grid.shape
    tokens = rearrange(mask, "(t h w) -> t h w", t=t, h=h, w=w)
    return repeat(tokens, "t h w -> (t dt) (h dh) (w dw)", dt=grid.tubelet_t, dh=grid.patch,
                  dw=grid.patch)


def overlay(clip: np.ndarray, mask: np.ndarray, grid: TokenGrid) -> np.ndarray:
    """Frames uint8 (T, H, W, 3) with the hidden tokens of mask (N,) tinted red, grid lines dark."""
    hidden = token_mask_pixels(mask, grid)[..., None]  # T H W 1
    frames = clip[: grid.frames].astype(np.float32)
    tinted = np.where(hidden, (1 - TINT_ALPHA) * frames + TINT_ALPHA * HIDDEN_TINT, frames)
    tinted[:, :: grid.patch] *= 0.8  # faint token grid
    tinted[:, :, :: grid.patch] *= 0.8
    return tinted.round().astype(np.uint8)


def strategy_masks(clip: np.ndarray, grid: TokenGrid, strategies: list[str], ratio: float,
                   seed: int) -> dict[str, np.ndarray]:
    """Each strategy's mask bool (N,) of one clip uint8 (T, H, W, 3), same seed for all."""
    batch = torch.from_numpy(np.ascontiguousarray(clip[None, : grid.frames]))  # 1 T H W 3
    masks = {}
    for strategy in strategies:
        mask_fn = make_mask_fn(MaskConfig(strategy=strategy, ratio=ratio))
        masks[strategy] = mask_fn(batch, grid, torch.Generator().manual_seed(seed))[0].numpy()
    return masks


def side_by_side(clip: np.ndarray, masks: dict[str, np.ndarray], grid: TokenGrid,
                 scale: int = 3) -> np.ndarray:
    """Frames uint8 (T, H*s, W', 3): the clip, then one panel per strategy, s-times upscaled."""
    panels = [clip[: grid.frames]] + [overlay(clip, m, grid) for m in masks.values()]
    gap = np.full((grid.frames, grid.size, GAP_PX // scale or 1, 3), 255, np.uint8)
    strip = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=2)  # T H W' 3
    return repeat(strip, "t h w c -> t (h s) (w r) c", s=scale, r=scale)


def gif_bytes(frames: np.ndarray, fps: float = 8.0) -> bytes:
    """An animated, looping GIF of frames uint8 (T, H, W, 3)."""
    buffer = io.BytesIO()
    iio.imwrite(buffer, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    return buffer.getvalue()


def write_mask_video(path: str | Path, clip: np.ndarray, grid: TokenGrid, strategies: list[str],
                     ratio: float = 0.4, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a GIF of the clip and each strategy's hidden tokens side by side; return the masks."""
    masks = strategy_masks(clip, grid, strategies, ratio, seed)
    atomic_write_bytes(path, gif_bytes(side_by_side(clip, masks, grid)))
    return masks
