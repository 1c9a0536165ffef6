"""Attention pooling: queries cross-attend a set of tokens (the one pooling module of ia-world).

Used by the attentive probe (a learned query + MLP, as V-JEPA), the QA head (the question's
embedding is the query) and the SB3 features extractor (a learned query).
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn


class AttentivePool(nn.Module):
    """Cross-attention pooling (B, N, D) -> (B, Q, D), queried by a learned or a given query."""

    def __init__(self, dim: int, num_heads: int = 1, mlp_ratio: float = 0.0,
                 learned_query: bool = True):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim)) if learned_query else None
        if learned_query:
            nn.init.trunc_normal_(self.query, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim) if mlp_ratio else None
        self.mlp = Mlp(dim, int(dim * mlp_ratio)) if mlp_ratio else None

    def forward(self, tokens: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, N, D), query (B, Q, D) or the learned one -> pooled (B, Q, D)."""
        if query is None:
            query = self.query.expand(tokens.shape[0], -1, -1)       # B 1 D
        keys = self.norm(tokens)
        pooled = self.attention(query, keys, keys, need_weights=False)[0]
        if self.mlp is None:
            return pooled
        pooled = query + pooled
        return pooled + self.mlp(self.norm_mlp(pooled))
