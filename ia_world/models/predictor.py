"""Narrow predictor ViT: context latents + mask tokens at target positions -> target latents."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import nn

from ia_world.models.encoder import gather_tokens, position_table
from ia_world.models.presets import ModelConfig


class Predictor(nn.Module):
    """forward(context (B,Nc,D), context_idx (B,Nc), target_idx (B,Nt)) -> (B, Nt, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Linear(cfg.embed_dim, cfg.pred_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.pred_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.pos_embed = position_table(cfg.grid, cfg.pred_dim, cfg.learnable_pos)
        self.blocks = nn.ModuleList(
            Block(cfg.pred_dim, cfg.pred_heads, cfg.mlp_ratio, qkv_bias=True)
            for _ in range(cfg.pred_depth))
        self.norm = nn.LayerNorm(cfg.pred_dim)
        self.project = nn.Linear(cfg.pred_dim, cfg.embed_dim)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor,
                target_idx: torch.Tensor) -> torch.Tensor:
        """Predict the latents of the target tokens from the context latents."""
        pos = self.pos_embed.expand(context.shape[0], -1, -1)  # B N Dp
        x_context = self.embed(context) + gather_tokens(pos, context_idx)
        x_target = self.mask_token + gather_tokens(pos, target_idx)
        x = torch.cat([x_context, x_target], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.project(self.norm(x[:, context.shape[1]:]))
