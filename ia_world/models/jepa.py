"""IA-JEPA: context encoder + predictor trained against an EMA target encoder on hidden tokens."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ia_world.models.encoder import VideoEncoder, gather_tokens
from ia_world.models.predictor import Predictor
from ia_world.models.presets import ModelConfig


def split_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mask bool (B, N), True = hidden, same count per clip -> (context_idx, target_idx), sorted."""
    num_hidden = mask.sum(1)
    if not bool((num_hidden == num_hidden[0]).all()):
        raise ValueError("every clip must hide the same number of tokens, "
                         f"got {num_hidden.tolist()}")
    order = torch.argsort(mask.int(), dim=1, stable=True)  # context tokens first
    num_context = mask.shape[1] - int(num_hidden[0])
    return order[:, :num_context], order[:, num_context:]


class IAJEPA(nn.Module):
    """forward(frames uint8 (B,T,H,W,3), mask bool (B,N)) -> (loss, target latents (B,Nt,D))."""

    def __init__(self, cfg: ModelConfig, loss: str = "l1"):
        super().__init__()
        self.encoder = VideoEncoder(cfg)
        self.predictor = Predictor(cfg)
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.loss = loss

    def forward(self, frames: torch.Tensor, mask: torch.Tensor):
        """JEPA loss between predicted and layer-normed EMA target latents at hidden tokens."""
        context_idx, target_idx = split_mask(mask)
        with torch.no_grad():
            targets = self.target(frames)  # B N D
            targets = nn.functional.layer_norm(targets, targets.shape[-1:])
            targets = gather_tokens(targets, target_idx)
        context = self.encoder(frames, keep=context_idx)
        predicted = self.predictor(context, context_idx, target_idx)
        if self.loss == "l1":
            loss = (predicted.float() - targets.float()).abs().mean()
        else:
            loss = (predicted.float() - targets.float()).pow(2).mean()
        return loss, targets

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step: target <- momentum * target + (1 - momentum) * encoder."""
        for target, online in zip(self.target.parameters(), self.encoder.parameters()):
            target.lerp_(online.detach(), 1.0 - momentum)
