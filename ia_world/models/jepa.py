"""IA-JEPA: context encoder + predictor trained against an EMA target encoder on hidden tokens."""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn

from ia_world.models.encoder import VideoEncoder, gather_tokens
from ia_world.models.predictor import Predictor
from ia_world.models.presets import ModelConfig

REGULARIZERS = ("none", "sigreg", "vicreg")
REGULARIZER_POOLS = ("tokens", "frames")  # what the anti-collapse term's samples are
SIGREG_SLICES = 256  # random 1-D directions per step
SIGREG_KNOTS = 17  # trapezoid knots of the Epps-Pulley integral over t in [-5, 5]
MAX_REGULARIZED_TOKENS = 2048  # tokens (evenly strided) the regularizer sees per step


def sigreg(z: torch.Tensor, slices: int = SIGREG_SLICES) -> torch.Tensor:
    """SIGReg (LeJEPA): Epps-Pulley statistic of z (n, D) projected on random unit directions.

    For each direction a, with s = z a: n * integral over t of |phi_n(t) - exp(-t^2/2)|^2
    exp(-t^2/2) dt, phi_n(t) = mean_i exp(i t s_i) the empirical characteristic function and
    exp(-t^2/2) that of N(0, 1); averaged over directions. It is 0 only when every projection
    is standard Gaussian, so a collapsed (constant or low-rank) z pays. The directions come from
    torch's global RNG, which checkpoints save, so a resumed run draws the same ones.
    """
    z = z.float()
    directions = torch.randn(z.shape[1], slices, device=z.device)
    directions = directions / directions.norm(dim=0, keepdim=True)
    t = torch.linspace(-5.0, 5.0, SIGREG_KNOTS, device=z.device)
    gauss = torch.exp(-0.5 * t.square())
    angles = (z @ directions)[..., None] * t  # (n, slices, knots)
    real, imag = angles.cos().mean(0), angles.sin().mean(0)  # (slices, knots)
    error = ((real - gauss).square() + imag.square()) * gauss
    return torch.trapezoid(error, t, dim=-1).mean() * z.shape[0]


def vicreg(z: torch.Tensor) -> torch.Tensor:
    """VICReg's variance + covariance terms of z (n, D): hinge on per-dim std below 1 plus the
    squared off-diagonal covariances / D."""
    z = z.float()
    centred = z - z.mean(0)
    variance = torch.relu(1.0 - (centred.var(0) + 1e-4).sqrt()).mean()
    cov = centred.T @ centred / max(z.shape[0] - 1, 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return variance + off_diagonal.square().sum() / z.shape[1]


def regularization(name: str, latents: torch.Tensor) -> torch.Tensor:
    """The anti-collapse term `name` of latents (..., D), over at most MAX_REGULARIZED_TOKENS
    of its rows (a fixed stride, no RNG)."""
    flat = latents.reshape(-1, latents.shape[-1])
    flat = flat[::-(-len(flat) // MAX_REGULARIZED_TOKENS)]
    return sigreg(flat) if name == "sigreg" else vicreg(flat)


def group_means(latents: torch.Tensor, groups: torch.Tensor,
                num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the ... D latents in each of num_groups groups (groups: their group index, the
    latents' leading shape): (G, D) means (0 where empty) and (G,) counts."""
    latents, groups = latents.float().reshape(-1, latents.shape[-1]), groups.reshape(-1)
    sums = latents.new_zeros(num_groups, latents.shape[-1]).index_add_(0, groups, latents)
    counts = latents.new_zeros(num_groups).index_add_(
        0, groups, torch.ones_like(groups, dtype=latents.dtype))
    return sums / counts.clamp(min=1)[:, None], counts


def frame_means(latents: torch.Tensor, token_idx: torch.Tensor, tokens_per_frame: int,
                num_frames: int) -> torch.Tensor:
    """Mean latent per (clip, time step) of B n D tokens at grid indices token_idx (B, n): (F, D)
    over the F clip-steps that hold at least one of the tokens."""
    clip = torch.arange(len(token_idx), device=token_idx.device)[:, None]        # B 1
    frame = clip * num_frames + token_idx // tokens_per_frame                     # B n
    means, counts = group_means(latents, frame, len(token_idx) * num_frames)
    return means[counts > 0]


def position_centred(latents: torch.Tensor, token_idx: torch.Tensor,
                     num_tokens: int) -> torch.Tensor:
    """B n D latents at grid indices token_idx (B, n) minus the batch mean of their grid
    position: what is the same in every clip there (the position embedding, a static
    background) is removed, what varies between clips (bodies, motion) is kept."""
    means, _ = group_means(latents, token_idx, num_tokens)                       # N D
    return latents.float() - means[token_idx]


def split_mask(mask: torch.Tensor, context: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """mask bool (B, N), True = hidden (the targets), and context bool (B, N) (None: every token
    not hidden), each the same count per clip -> (context_idx, target_idx), sorted. Tokens in
    neither are left out of both."""
    context = ~mask if context is None else context
    if bool((context & mask).any()):
        raise ValueError("a token cannot be both context and target")
    return same_count_indices(context, "context"), same_count_indices(mask, "hidden")


def same_count_indices(chosen: torch.Tensor, name: str) -> torch.Tensor:
    """Sorted indices (B, n) of the True entries of chosen bool (B, N), n the same per row."""
    counts = chosen.sum(1)
    if not bool((counts == counts[0]).all()):
        raise ValueError(f"every clip must have the same number of {name} tokens, "
                         f"got {counts.tolist()}")
    order = torch.argsort((~chosen).int(), dim=1, stable=True)  # chosen tokens first, in order
    return order[:, : int(counts[0])]


class StepOutput(NamedTuple):
    """One training step's loss and what the logs break it into."""

    loss: torch.Tensor  # the JEPA loss plus the weighted regularizer (what is minimised)
    targets: torch.Tensor  # B Nt D layer-normed target latents
    token_loss: torch.Tensor  # B Nt each hidden token's share of the JEPA loss (detached)
    target_idx: torch.Tensor  # B Nt the hidden tokens' indices
    regularizer: torch.Tensor  # the weighted regularizer term (detached)
    context: torch.Tensor  # B Nc D the context encoder's latents (detached)
    target_norm: torch.Tensor  # mean L2 norm of the target latents before their layer norm


class IAJEPA(nn.Module):
    """forward(frames uint8 (B,T,H,W,3), mask bool (B,N)) -> StepOutput (loss, targets, ...)."""

    def __init__(self, cfg: ModelConfig, loss: str = "l1", regularizer: str = "none",
                 regularizer_weight: float = 0.0, regularizer_pool: str = "tokens",
                 centre_positions: bool = False):
        super().__init__()
        self.centre_positions = centre_positions
        self.regularizer, self.regularizer_weight = regularizer, regularizer_weight
        self.regularizer_pool, self.grid = regularizer_pool, cfg.grid
        self.encoder = VideoEncoder(cfg)
        self.predictor = Predictor(cfg)
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.loss = loss

    def forward(self, frames: torch.Tensor, mask: torch.Tensor,
                token_weight: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> StepOutput:
        """JEPA loss between predicted and layer-normed EMA target latents at hidden tokens, plus
        `regularizer_weight` x the anti-collapse term (SIGReg or VICReg) of the context
        encoder's outputs at the context tokens (the latents the gradient reaches): over the
        tokens themselves, or (regularizer_pool="frames") their means per clip and time step.
        With centre_positions, targets and regularized latents first lose their batch mean per
        grid position (position_centred), so neither the loss nor the anti-collapse term can be
        met by what every clip shares at a position.

        token_weight (B, N): each hidden token's weight in the prediction loss (None: equal),
        normalised over the batch's hidden tokens, so the loss stays a weighted mean.
        context (B, N): the tokens the context encoder sees (None: every token not hidden).
        """
        context_idx, target_idx = split_mask(mask, context)
        with torch.no_grad():
            targets = self.target(frames)  # B N D
            target_norm = targets.float().norm(dim=-1).mean()
            targets = nn.functional.layer_norm(targets, targets.shape[-1:])
            if self.centre_positions:
                targets = targets - targets.mean(0, keepdim=True)
            targets = gather_tokens(targets, target_idx)
        context = self.encoder(frames, keep=context_idx)
        predicted = self.predictor(context, context_idx, target_idx)
        difference = predicted.float() - targets.float()
        error = (difference.abs() if self.loss == "l1" else difference.square()).mean(-1)  # B Nt
        weight = (torch.ones_like(error) if token_weight is None
                  else torch.gather(token_weight.to(error), 1, target_idx))           # B Nt
        weight = weight / weight.sum()
        token_loss = weight * error                                # B Nt, sums to the JEPA loss
        regularizer = error.new_zeros(())
        if self.regularizer != "none" and self.regularizer_weight > 0:
            time_steps, height, width = self.grid.shape
            samples = (position_centred(context, context_idx, self.grid.num_tokens)
                       if self.centre_positions else context)
            samples = samples if self.regularizer_pool == "tokens" else frame_means(
                samples, context_idx, height * width, time_steps)
            regularizer = self.regularizer_weight * regularization(self.regularizer, samples)
        return StepOutput(token_loss.sum() + regularizer, targets, token_loss.detach(),
                          target_idx, regularizer.detach(), context.detach(), target_norm)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step: target <- momentum * target + (1 - momentum) * encoder."""
        for target, online in zip(self.target.parameters(), self.encoder.parameters()):
            target.lerp_(online.detach(), 1.0 - momentum)
