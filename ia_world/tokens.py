"""The tubelet token grid shared by masking, the model and the evaluation.

Token order everywhere is (t h w) row-major: token n = (ti * H' + hi) * W' + wi, with
T' = T / tubelet_t, H' = H / patch, W' = W / patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange


@dataclass(frozen=True)
class TokenGrid:
    """A clip of frames x size x size pixels cut into tubelets of tubelet_t x patch x patch."""

    frames: int = 16
    size: int = 64
    tubelet_t: int = 2
    patch: int = 8

    def __post_init__(self):
        if self.frames % self.tubelet_t or self.size % self.patch:
            raise ValueError(f"clip {self.frames}x{self.size} is not divisible into tubelets "
                             f"{self.tubelet_t}x{self.patch}x{self.patch}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T', H', W'): tokens along time, height and width."""
        side = self.size // self.patch
        return self.frames // self.tubelet_t, side, side

    @property
    def num_tokens(self) -> int:
        """N = T' * H' * W'."""
        t, h, w = self.shape
        return t * h * w

    def token_steps(self, device=None) -> torch.Tensor:
        """Each token's time step (N,) in token order."""
        _, h, w = self.shape
        return torch.arange(self.num_tokens, device=device) // (h * w)

    def pool(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a per-pixel map (B, T, H, W) over each tubelet -> (B, N)."""
        pooled = rearrange(values, "b (t dt) (h dh) (w dw) -> b (t h w) (dt dh dw)",
                           dt=self.tubelet_t, dh=self.patch, dw=self.patch)
        return pooled.mean(-1)

    def token_of(self, frame: int, pixel_x: float, pixel_y: float) -> int:
        """Index of the token holding a pixel (column x, row y) of a frame."""
        _, h, w = self.shape
        ti = min(max(int(frame) // self.tubelet_t, 0), self.frames // self.tubelet_t - 1)
        hi = min(max(int(pixel_y // self.patch), 0), h - 1)
        wi = min(max(int(pixel_x // self.patch), 0), w - 1)
        return (ti * h + hi) * w + wi
