"""Video ViT encoder: uint8 clips -> Conv3d tubelets + 3D positions -> timm Blocks -> latents."""

from __future__ import annotations

import torch
from einops import rearrange
from timm.models.vision_transformer import Block
from torch import nn

from ia_world.models.presets import ModelConfig
from ia_world.tokens import TokenGrid


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Sin-cos embedding (len(positions), dim) of integer positions; dim must be even."""
    freqs = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.double()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(grid: TokenGrid, dim: int) -> torch.Tensor:
    """Fixed 3D sin-cos positions (N, dim) in (t h w) token order; zero-padded to dim."""
    axis_dim = 2 * (dim // 6)
    t, h, w = grid.shape
    ti, hi, wi = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    parts = [sincos_1d(axis_dim, axis.flatten()) for axis in (ti, hi, wi)]
    table = torch.cat(parts, dim=1)
    return nn.functional.pad(table, (0, dim - table.shape[1]))


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return rearrange(frames, "b t h w c -> b c t h w").float() / 127.5 - 1.0


def position_table(grid: TokenGrid, dim: int, learnable: bool) -> nn.Parameter:
    """(1, N, dim) positions: sin-cos, frozen unless `learnable`."""
    return nn.Parameter(sincos_3d(grid, dim)[None], requires_grad=learnable)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), index (B, M) -> (B, M, D)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


class VideoEncoder(nn.Module):
    """Tubelet ViT: forward(frames uint8 (B,T,H,W,3), keep (B,M) or None) -> (B, M or N, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.grid = cfg.grid
        self.embed_dim = cfg.embed_dim
        kernel = (cfg.tubelet_t, cfg.patch, cfg.patch)
        self.patch_embed = nn.Conv3d(3, cfg.embed_dim, kernel_size=kernel, stride=kernel)
        self.pos_embed = position_table(self.grid, cfg.embed_dim, cfg.learnable_pos)
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, qkv_bias=True)
            for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, frames: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode all tokens, or only the `keep` token indices (B, M) of each clip."""
        x = self.patch_embed(normalize_frames(frames))  # B D T' H' W'
        x = rearrange(x, "b d t h w -> b (t h w) d") + self.pos_embed
        if keep is not None:
            x = gather_tokens(x, keep)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
