"""Per-token saliency of a clip for the saliency strategies: motion, accel and interaction.

Each takes a clip uint8 (B, T, H, W, 3) and returns a float (B, N) score (token order (t h w)).
"""

from __future__ import annotations

import torch

from ia_world.masking.flow import block_flow, lagrangian_change
from ia_world.tokens import TokenGrid


def _luma(clip: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> channel mean in [0, 1], float (B, T, H, W)."""
    return clip.float().mean(-1) / 255.0


def _pad_time(values: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Repeat the first/last frame of (B, T', H, W) so that it covers all T frames again."""
    return torch.cat([values[:, :1]] * before + [values] + [values[:, -1:]] * after, dim=1)


def motion_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Mean |x_t - x_{t-1}| per tubelet -> (B, N)."""
    x = _luma(clip)
    change = (x[:, 1:] - x[:, :-1]).abs()  # (B, T-1, H, W)
    return grid.pool(_pad_time(change, 1, 0))


def accel_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """The paper's rule: mean |x_{t+1} - 2 x_t + x_{t-1}| per tubelet -> (B, N)."""
    x = _luma(clip)
    second = (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]).abs()  # (B, T-2, H, W)
    return grid.pool(_pad_time(second, 1, 1))


def interaction_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Acceleration of local motion: mean |v_t(p + v_{t-1}(p)) - v_{t-1}(p)| per tubelet.

    v is the dense colour block-matching displacement between consecutive frames, so an object
    gliding at constant velocity scores ~0 and a collision or bounce scores its velocity change.
    """
    flow, matched = block_flow(clip)  # (B, T-1, H, W, 2), (N, 4) pixels whose window changed
    change = lagrangian_change(flow, matched)  # (B, T-2, H, W)
    return grid.pool(_pad_time(change, 1, 1))


SALIENCY = {
    "motion": motion_saliency,
    "accel": accel_saliency,
    "interaction": interaction_saliency,
}
