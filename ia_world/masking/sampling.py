"""Turning per-token keys into exact-count masks: Gumbel top-k, random tubes, multi-block.

Every function returns bool (B, N) with exactly k True per row; ties are broken by random keys
drawn from the caller's generator, so a given generator always yields the same mask.
"""

from __future__ import annotations

import torch
from einops import repeat

from ia_world.tokens import TokenGrid


def top_k_mask(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Bool (B, N): True at the k largest keys of each row."""
    mask = torch.zeros_like(keys, dtype=torch.bool)
    return mask.scatter(1, keys.topk(k, dim=1).indices, True)


def uniform_keys(shape, generator: torch.Generator, device) -> torch.Tensor:
    """Uniform keys in (0, 1) drawn from the generator (on CPU, so every device agrees)."""
    return torch.rand(shape, generator=generator).clamp_min(1e-12).to(device)


def gumbel_keys(saliency: torch.Tensor, temperature: float,
                generator: torch.Generator) -> torch.Tensor:
    """Keys whose top-k samples tokens without replacement with p ~ saliency^(1/temperature)."""
    scale = saliency / saliency.amax(dim=1, keepdim=True).clamp_min(1e-12)  # (B, N) in [0, 1]
    logits = scale.clamp_min(1e-6).log() / max(temperature, 1e-6)
    noise = uniform_keys(saliency.shape, generator, saliency.device)
    return logits - (-noise.log()).log()


def random_tube_keys(batch: int, grid: TokenGrid, generator: torch.Generator,
                     device) -> torch.Tensor:
    """Keys (B, N) that rank whole tubes (one spatial pattern for every time step) first."""
    t, h, w = grid.shape
    spatial = uniform_keys((batch, h * w), generator, device)
    tiebreak = uniform_keys((batch, t * h * w), generator, device)
    return repeat(spatial, "b s -> b (t s)", t=t) + 1e-3 * tiebreak


def multiblock_keys(batch: int, grid: TokenGrid, generator: torch.Generator, device,
                    num_blocks: int, block_scale: float,
                    aspect_ratio: tuple[float, float]) -> torch.Tensor:
    """V-JEPA multi-block: keys (B, N) = how many spatial blocks (spanning all time) cover a token.

    Each of `num_blocks` blocks covers `block_scale` of the frame with a random aspect ratio and
    position; the top-k of these keys (random tie-break) hides the blocks first.
    """
    t, h, w = grid.shape
    log_lo, log_hi = torch.log(torch.tensor(aspect_ratio, dtype=torch.float32))
    aspect = torch.exp(log_lo + (log_hi - log_lo) * uniform_keys((batch, num_blocks), generator,
                                                                  "cpu"))
    area = block_scale * h * w
    block_h = (area * aspect).sqrt().round().clamp(1, h)  # (B, K)
    block_w = (area / aspect).sqrt().round().clamp(1, w)
    top = ((h - block_h + 1) * uniform_keys((batch, num_blocks), generator, "cpu")).floor()
    left = ((w - block_w + 1) * uniform_keys((batch, num_blocks), generator, "cpu")).floor()
    rows = torch.arange(h, dtype=torch.float32)
    cols = torch.arange(w, dtype=torch.float32)
    in_rows = (rows >= top[..., None]) & (rows < (top + block_h)[..., None])  # (B, K, h)
    in_cols = (cols >= left[..., None]) & (cols < (left + block_w)[..., None])  # (B, K, w)
    cover = (in_rows[..., :, None] & in_cols[..., None, :]).sum(1).float()  # (B, h, w)
    keys = repeat(cover, "b h w -> b (t h w)", t=t)
    return (keys + uniform_keys(keys.shape, generator, "cpu")).to(device)
