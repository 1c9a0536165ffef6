"""Attention pooling: a learned query cross-attends a set of tokens (the one pooling module of
ia-world).

Used by the attentive probe (a learned query + MLP, as V-JEPA) and the SB3 features extractor.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn


class AttentivePool(nn.Module):
    """Cross-attention pooling (B, N, D) -> (B, 1, D) by a learned query."""

    def __init__(self, dim: int, num_heads: int = 1, mlp_ratio: float = 0.0):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim) if mlp_ratio else None
        self.mlp = Mlp(dim, int(dim * mlp_ratio)) if mlp_ratio else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, D) -> pooled (B, 1, D)."""
        query = self.query.expand(tokens.shape[0], -1, -1)           # B 1 D
        keys = self.norm(tokens)
        pooled = self.attention(query, keys, keys, need_weights=False)[0]
        if self.mlp is None:
            return pooled
        pooled = query + pooled
        return pooled + self.mlp(self.norm_mlp(pooled))
