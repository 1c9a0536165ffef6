"""Sparse local motion from pixels: colour block matching and its Lagrangian change over time.

Flat-coloured objects on a flat background: the displacement of a pixel's small colour window
between consecutive frames is found by matching it against all shifts within `radius` pixels; a
soft arg-min over the matching costs gives sub-pixel displacements and returns ~0 where matching
is ambiguous (flat areas), so only textured motion counts. Objects are sparse on a static
background: only pixels with a change within reach of their search area are matched (gathered,
matched with pixels on the last axis, scattered back); every other pixel has not moved, v = 0.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from einops import rearrange

SEARCH_RADIUS = 2  # pixels per frame searched in each direction
WINDOW = 3  # side of the square matching window, pixels
SOFTNESS = 0.03  # temperature of the soft arg-min over mean squared colour differences


def _shifts(radius: int) -> torch.Tensor:
    """All integer shifts (D, 2) as (dx, dy) with |dx|, |dy| <= radius, dy-major order."""
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)


def _edge_padded(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Replicate-pad (M, H, W, C) of any dtype by `pad` pixels on every side."""
    _, h, w, _ = images.shape
    rows = torch.arange(-pad, h + pad).clamp(0, h - 1).to(images.device)
    cols = torch.arange(-pad, w + pad).clamp(0, w - 1).to(images.device)
    return images[:, rows][:, :, cols]


def _patches(padded: torch.Tensor, where: torch.Tensor, side: int) -> torch.Tensor:
    """Side x side patches of padded (M, Hp, Wp, C) at corners `where` (N, 3) -> float (C,s,s,N).

    Each patch row is one contiguous run of side * C values, so one gather moves whole rows.
    """
    _, hp, wp, channels = padded.shape
    flat = padded.contiguous().flatten()
    runs = flat.as_strided((flat.numel() // channels - side + 1, side * channels), (channels, 1))
    m, y, x = where.unbind(1)
    starts = ((m * hp + y) * wp + x)[:, None] + torch.arange(side, device=padded.device) * wp
    rows = runs.index_select(0, starts.flatten()).float()  # (N * s, s * C)
    by_pixel = rows.view(len(where), side * side * channels).T.contiguous()  # (s*s*C, N)
    return rearrange(by_pixel, "(a b c) n -> c a b n", a=side, c=channels)


def changed_near(source: torch.Tensor, target: torch.Tensor, reach: int) -> torch.Tensor:
    """Bool (M, H, W): some pixel within `reach` differs between source and target (M,H,W,C)."""
    changed = (source != target).any(-1)[:, None].float()  # (M, 1, H, W)
    side = 2 * reach + 1
    rows = F.max_pool2d(changed, (1, side), stride=1, padding=(0, reach))  # separable max
    return F.max_pool2d(rows, (side, 1), stride=1, padding=(reach, 0))[:, 0] > 0


def match_pixels(source: torch.Tensor, target: torch.Tensor, where: torch.Tensor,
                 radius: int = SEARCH_RADIUS, window: int = WINDOW,
                 softness: float = SOFTNESS) -> torch.Tensor:
    """Soft arg-min displacement (N, 2) as (dx, dy) of the source window at `where` (N, 3).

    source, target: uint8 (M, H, W, C) frames t and t+1; colours count in units of 1/255.
    Cost of shift d = mean over the window of |target(p+d) - source(p)|^2 = window sums of
    |target|^2 - 2 source . target + a per-pixel constant that the soft arg-min ignores.
    Pixels are the last axis, so every operation runs over long contiguous rows.
    """
    half, span = window // 2, 2 * radius + 1
    source_patch = _patches(_edge_padded(source, half), where, window)  # (C, w, w, N)
    padded_target = _edge_padded(target, radius + half)  # (M, Hp, Wp, C)
    target_patch = _patches(padded_target, where, span + window - 1)  # (C, S, S, N)
    energy = F.avg_pool2d(padded_target.float().square().sum(-1), window, stride=1)
    costs = window * window * _patches(energy[..., None], where, span)[0]  # (dy, dx, N)
    for channel, wy, wx in itertools.product(range(source.shape[-1]), range(window),
                                             range(window)):
        costs.addcmul_(target_patch[channel, wy:wy + span, wx:wx + span],
                       source_patch[channel, wy, wx], value=-2.0)
    scale = -softness * (255 * window) ** 2  # costs were summed, not averaged, over the window
    weights = torch.softmax(costs.flatten(0, 1) / scale, dim=0)  # (D, N)
    return (_shifts(radius).to(weights).T @ weights).T


def block_flow(clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Displacement v_t(p) with frame t+1 at p+v ~ frame t at p, for clip uint8 (B,T,H,W,C).

    Returns the dense field (B, T-1, H, W, 2) and the matched pixels (N, 4) as (b, t, y, x);
    every other pixel has v = 0.
    """
    b, t = clip.shape[:2]
    source, target = clip[:, :-1].flatten(0, 1), clip[:, 1:].flatten(0, 1)  # (M, H, W, C)
    reach = SEARCH_RADIUS + WINDOW // 2  # beyond it a change cannot alter the matching costs
    where = changed_near(source, target, reach).nonzero()  # (N, 3) as (m, y, x)
    flow = torch.zeros(*source.shape[:-1], 2, device=clip.device)  # (M, H, W, 2)
    flow[where.unbind(1)] = match_pixels(source, target, where)
    pair_b, pair_t = where[:, 0] // (t - 1), where[:, 0] % (t - 1)
    matched = torch.stack([pair_b, pair_t, where[:, 1], where[:, 2]], dim=1)
    return rearrange(flow, "(b t) h w c -> b t h w c", b=b), matched


def sample_at(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of field (M, H, W, C) at points (N, 3) as (m, y, x), border clamped."""
    _, h, w, _ = field.shape
    m, y, x = points[:, 0].long(), points[:, 1].clamp(0, h - 1), points[:, 2].clamp(0, w - 1)
    y0, x0 = y.floor().long(), x.floor().long()
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    fy, fx = (y - y0)[:, None], (x - x0)[:, None]
    top = field[m, y0, x0] * (1 - fx) + field[m, y0, x1] * fx
    bottom = field[m, y1, x0] * (1 - fx) + field[m, y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def lagrangian_change(flow: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
    """|v_t(p + v_{t-1}(p)) - v_{t-1}(p)|: velocity change following the moving pixel.

    flow (B, T-1, H, W, 2) with v = 0 off the matched pixels (N, 4) -> (B, T-2, H, W), entry t-1
    belonging to frame t. Where v_{t-1}(p) = 0 the change is |v_t(p)|.
    """
    b, pairs = flow.shape[:2]
    change = flow[:, 1:].norm(dim=-1)  # (B, T-2, H, W)
    moving = matched[matched[:, 1] < pairs - 1]  # pixels with a velocity before and after
    bi, ti, y, x = moving.unbind(1)
    before = flow[bi, ti, y, x]  # (N, 2) as (dx, dy)
    after = rearrange(flow[:, 1:], "b t h w c -> (b t) h w c")
    points = torch.stack([(bi * (pairs - 1) + ti).float(), y + before[:, 1], x + before[:, 0]], 1)
    change[bi, ti, y, x] = (sample_at(after, points) - before).norm(dim=-1)
    return change
