"""Per-token saliency of a clip for the saliency strategies: motion, accel and interaction.

Each takes a clip uint8 (B, T, H, W, 3) and returns a float (B, N) score (token order (t h w)).

Every saliency is the tubelet mean of a per-frame map (`FRAME_MAPS`) whose first/last frames are
copies of their neighbours (`PAD`). So the per-frame, per-patch means of an episode's map
(`episode_saliency`, stored in the shards at generation) give any stride-1 clip's token saliency
exactly (`clip_saliency`): masks then cost no saliency computation at training time.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from ia_world.masking.flow import block_flow, lagrangian_change
from ia_world.tokens import TokenGrid


def _luma(clip: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> channel mean in [0, 1], float (B, T, H, W)."""
    return clip.float().mean(-1) / 255.0


def _pad_time(values: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Repeat the first/last frame of (B, T', H, W) so that it covers all T frames again."""
    return torch.cat([values[:, :1]] * before + [values] + [values[:, -1:]] * after, dim=1)


def motion_map(clip: torch.Tensor) -> torch.Tensor:
    """|x_t - x_{t-1}| for t = 1 .. T-1 -> (B, T-1, H, W)."""
    x = _luma(clip)
    return (x[:, 1:] - x[:, :-1]).abs()


def accel_map(clip: torch.Tensor) -> torch.Tensor:
    """|x_{t+1} - 2 x_t + x_{t-1}| for t = 1 .. T-2 -> (B, T-2, H, W)."""
    x = _luma(clip)
    return (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]).abs()


def interaction_map(clip: torch.Tensor) -> torch.Tensor:
    """|v_t(p + v_{t-1}(p)) - v_{t-1}(p)| for t = 1 .. T-2 -> (B, T-2, H, W)."""
    flow, matched = block_flow(clip)  # (B, T-1, H, W, 2), (N, 4) pixels whose window changed
    return lagrangian_change(flow, matched)


FRAME_MAPS = {"motion": motion_map, "accel": accel_map, "interaction": interaction_map}
# frames of the clip (before, after) that copy their neighbour's map value
PAD = {"motion": (1, 0), "accel": (1, 1), "interaction": (1, 1)}


def motion_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Mean |x_t - x_{t-1}| per tubelet -> (B, N)."""
    return grid.pool(_pad_time(motion_map(clip), *PAD["motion"]))


def accel_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """The paper's rule: mean |x_{t+1} - 2 x_t + x_{t-1}| per tubelet -> (B, N)."""
    return grid.pool(_pad_time(accel_map(clip), *PAD["accel"]))


def interaction_saliency(clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Acceleration of local motion: mean |v_t(p + v_{t-1}(p)) - v_{t-1}(p)| per tubelet.

    v is the dense colour block-matching displacement between consecutive frames, so an object
    gliding at constant velocity scores ~0 and a collision or bounce scores its velocity change.
    """
    return grid.pool(_pad_time(interaction_map(clip), *PAD["interaction"]))


SALIENCY = {
    "motion": motion_saliency,
    "accel": accel_saliency,
    "interaction": interaction_saliency,
}

STORED_PATCH = 8  # stored saliency: per frame and per 8 x 8 patch (the default tubelet's patch)

TOKEN_CLASSES = ("static", "moving", "interacting")  # what the training log breaks the loss into
# motion saliency above this: a moving token (on Billiards at 64 px, 0.90 recall and 0.97
# precision against the tokens a moving object's ground-truth bounding box overlaps)
MOVING_LUMA = 0.002
# interaction saliency at or above this: an interacting token (the top ~2% of tokens, holding
# ~60% of the ground-truth collision tokens)
INTERACTING_LEVEL = 0.5


def token_classes(clip: torch.Tensor, grid: TokenGrid,
                  interaction: torch.Tensor | None = None) -> torch.Tensor:
    """int64 (B, N): 0 static, 1 moving (its pixels change), 2 interacting (the clips' stored
    interaction saliency (B, N) is high; without it no token is class 2)."""
    classes = (motion_saliency(clip, grid) > MOVING_LUMA).long()
    if interaction is not None:
        classes = torch.where(interaction.to(classes.device) >= INTERACTING_LEVEL, 2, classes)
    return classes


def episode_saliency(frames: np.ndarray, patch: int = STORED_PATCH) -> dict[str, np.ndarray]:
    """Per-frame, per-patch means of every saliency map of an episode's frames uint8 (T,H,W,3).

    Returns name -> float32 (T, H/patch, W/patch); row t is the map at frame t (rows outside the
    map's range are zero and never read by `clip_saliency`).
    """
    clip = torch.from_numpy(np.ascontiguousarray(frames))[None]
    stored = {}
    for name, frame_map in FRAME_MAPS.items():
        before, _ = PAD[name]
        values = frame_map(clip)[0]  # (T', H, W), row i = frame i + before
        means = rearrange(values, "t (h dh) (w dw) -> t h w (dh dw)", dh=patch, dw=patch)
        rows = torch.zeros(clip.shape[1], *means.shape[1:3])
        rows[before:before + len(values)] = means.mean(-1)
        stored[name] = rows.numpy()
    return stored


def clip_saliency(stored: np.ndarray, name: str, start: int, num_frames: int,
                  tubelet_t: int) -> torch.Tensor:
    """Token saliency (N,) of the stride-1 clip of `num_frames` frames from `start`, from an
    episode's stored per-frame patch means (T, h, w) of saliency `name`: equals
    `SALIENCY[name]` of that clip on the grid of tubelets tubelet_t x STORED_PATCH^2."""
    before, after = PAD[name]
    frames = np.clip(np.arange(start, start + num_frames), start + before,
                     start + num_frames - 1 - after)
    rows = torch.from_numpy(np.asarray(stored[frames], np.float32))  # (T, h, w)
    return rearrange(rows, "(t dt) h w -> (t h w) dt", dt=tubelet_t).mean(-1)
