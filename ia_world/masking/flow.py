"""Dense local motion from pixels: colour block matching and its Lagrangian change over time.

Flat-coloured objects on a flat background: the displacement of each pixel's small colour
neighbourhood between consecutive frames is found by matching against all shifts within
`radius` pixels; a soft arg-min over the matching costs gives sub-pixel displacements and
returns ~0 where matching is ambiguous (flat background), so only textured motion counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

SEARCH_RADIUS = 2  # pixels per frame searched in each direction
WINDOW = 3  # side of the square matching window, pixels
SOFTNESS = 0.03  # temperature of the soft arg-min over summed squared colour differences


def _shifts(radius: int) -> torch.Tensor:
    """All integer shifts (D, 2) as (dx, dy) with |dx|, |dy| <= radius."""
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)


def block_flow(frames: torch.Tensor, radius: int = SEARCH_RADIUS, window: int = WINDOW,
               softness: float = SOFTNESS) -> torch.Tensor:
    """Displacement v_t(p) with frame t+1 at p+v ~ frame t at p: (B,T,C,H,W) -> (B,T-1,2,H,W)."""
    b, t, _, h, w = frames.shape
    source = rearrange(frames[:, :-1], "b t c h w -> (b t) c h w")
    target = F.pad(rearrange(frames[:, 1:], "b t c h w -> (b t) c h w"), (radius,) * 4,
                   mode="replicate")
    shifts = _shifts(radius)  # (D, 2)
    costs = torch.stack([
        ((target[:, :, radius + dy: radius + dy + h, radius + dx: radius + dx + w] - source) ** 2)
        .sum(1)
        for dx, dy in shifts.int().tolist()
    ], dim=1)  # (M, D, H, W)
    costs = F.avg_pool2d(F.pad(costs, (window // 2,) * 4, mode="replicate"), window, stride=1)
    weights = torch.softmax(-costs / softness, dim=1)
    flow = torch.einsum("mdhw,dc->mchw", weights, shifts.to(frames.device))
    return rearrange(flow, "(b t) c h w -> b t c h w", b=b, t=t - 1)


def sample_at(field: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of field (M, C, H, W) at p + offset(p), offset (M, 2, H, W) in pixels."""
    _, _, h, w = field.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=field.dtype, device=field.device),
                            torch.arange(w, dtype=field.dtype, device=field.device), indexing="ij")
    grid_x = (xs + offset[:, 0]) / (w - 1) * 2 - 1
    grid_y = (ys + offset[:, 1]) / (h - 1) * 2 - 1
    return F.grid_sample(field, torch.stack([grid_x, grid_y], dim=-1), align_corners=True,
                         padding_mode="border")


def lagrangian_change(flow: torch.Tensor) -> torch.Tensor:
    """|v_t(p + v_{t-1}(p)) - v_{t-1}(p)|: velocity change following the moving pixel.

    flow (B, T-1, 2, H, W) -> (B, T-2, H, W), entry t-1 belonging to frame t.
    """
    b = flow.shape[0]
    before = rearrange(flow[:, :-1], "b t c h w -> (b t) c h w")
    after = rearrange(flow[:, 1:], "b t c h w -> (b t) c h w")
    change = (sample_at(after, before) - before).norm(dim=1)
    return rearrange(change, "(b t) h w -> b t h w", b=b)
