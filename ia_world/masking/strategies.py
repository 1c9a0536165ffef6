"""The masking interface (DESIGN.md section 4): MaskConfig -> fn(clip, grid, generator) -> mask."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ia_world.config import check_choice, check_range
from ia_world.errors import ConfigError, DataError
from ia_world.masking.saliency import SALIENCY
from ia_world.masking.sampling import (
    gumbel_keys,
    multiblock_keys,
    random_tube_keys,
    top_k_mask,
    uniform_keys,
)
from ia_world.tokens import TokenGrid

STRATEGIES = ("random_tube", "multiblock", *SALIENCY)

# fn(clip, grid, generator, saliency=None): `saliency` (B, N) stored with the data, if any
MaskFn = Callable[..., torch.Tensor]


@dataclass
class MaskConfig:
    """Which tokens to hide: strategy, share, stochastic component and strategy parameters."""

    strategy: str = "interaction"  # random_tube | multiblock | motion | accel | interaction
    ratio: float = 0.4  # share of the N tokens hidden, exactly round(ratio * N) per clip
    temperature: float = 0.25  # saliency strategies: p ~ saliency^(1/temperature); 0 = top-k
    random_share: float = 0.1  # saliency strategies: share of the hidden tokens drawn uniformly
    num_blocks: int = 8  # multiblock: spatial blocks per clip, each spanning all time steps
    block_scale: float = 0.15  # multiblock: share of the frame one block covers
    aspect_ratio: list[float] = field(default_factory=lambda: [0.75, 1.5])  # multiblock: h/w range
    future: float = 0.0  # targets in the last token time steps: share in (0, 1), count >= 1; 0 off
    # > 0: the context is the first k token time steps and the targets lie in the later ones
    # (the predictor forecasts from the context alone); ratio and future then choose nothing
    context_steps: int = 0
    # with context_steps: share of the later tokens that are targets, chosen by the strategy
    # (1 = every later token, the strategy chooses nothing; the rest are neither context nor target)
    target_share: float = 1.0
    stored: bool = True  # saliency strategies: use the saliency stored in shards when present

    def validate(self) -> None:
        """Raise ConfigError on an unknown strategy or an out-of-range value."""
        check_choice("strategy", self.strategy, STRATEGIES)
        if not 0.0 < self.ratio < 1.0:
            raise ConfigError(f"ratio={self.ratio} must be in (0, 1): the predictor needs "
                              "context tokens and targets")
        check_range("temperature", self.temperature, 0.0, 100.0)
        check_range("random_share", self.random_share, 0.0, 1.0)
        check_range("num_blocks", self.num_blocks, 1, 1000)
        check_range("block_scale", self.block_scale, 0.0, 1.0)
        if len(self.aspect_ratio) != 2 or not 0 < self.aspect_ratio[0] <= self.aspect_ratio[1]:
            raise ConfigError(f"aspect_ratio={self.aspect_ratio} must be [low, high] "
                              "with 0 < low <= high")
        check_range("future", self.future, 0.0, 10_000.0)
        check_range("context_steps", self.context_steps, 0, 10_000)
        if not 0.0 < self.target_share <= 1.0:
            raise ConfigError(f"target_share={self.target_share} must be in (0, 1]")
        if self.target_share < 1.0 and not self.context_steps:
            raise ConfigError(f"target_share={self.target_share} chooses among the tokens after "
                              "the context steps: set context_steps too (ratio sets the share "
                              "hidden otherwise)")
        if self.context_steps and self.future:
            raise ConfigError(f"context_steps={self.context_steps} and future={self.future} "
                              "both choose the hidden time steps: set one of them")
        if self.future >= 1 and self.future != int(self.future):
            raise ConfigError(f"future={self.future} must be a share in (0, 1) or a whole "
                              "number of token time steps")


def future_steps(future: float, grid: TokenGrid) -> int:
    """How many last token time steps hold the targets under masking.future (0 = off)."""
    steps = grid.shape[0]
    return round(future * steps) if 0 < future < 1 else int(future)


def check_time_steps(cfg: MaskConfig, grid: TokenGrid) -> None:
    """ConfigError unless masking.future / context_steps leave both context and hidden tokens
    (the future room for round(ratio * N) of them, target_share at least one) on the grid's
    token time steps."""
    if cfg.context_steps and not cfg.context_steps < grid.shape[0]:
        raise ConfigError(f"context_steps={cfg.context_steps} must be below the clip's "
                          f"{grid.shape[0]} token time steps: the later ones are the targets")
    if cfg.context_steps and num_targets(cfg, grid) < 1:
        raise ConfigError(f"target_share={cfg.target_share} chooses no token of the "
                          f"{later_count(cfg, grid)} after the context steps")
    if not cfg.future:
        return
    steps, k = future_steps(cfg.future, grid), num_hidden(cfg.ratio, grid)
    t, h, w = grid.shape
    if not 1 <= steps < t or steps * h * w < k:
        raise ConfigError(f"future={cfg.future}: {steps} of the clip's {t} token time steps, "
                          f"needs 1 .. {t - 1} steps holding >= round(ratio * N) = {k} tokens "
                          f"({h * w} per step)")


def num_hidden(ratio: float, grid: TokenGrid) -> int:
    """Tokens hidden per clip: round(ratio * N)."""
    return round(ratio * grid.num_tokens)


def later_count(cfg: MaskConfig, grid: TokenGrid) -> int:
    """Tokens after the first context_steps token time steps."""
    t, h, w = grid.shape
    return (t - cfg.context_steps) * h * w


def num_targets(cfg: MaskConfig, grid: TokenGrid) -> int:
    """Tokens hidden per clip: round(target_share x the later tokens) with context_steps, else
    round(ratio * N)."""
    if cfg.context_steps:
        return round(cfg.target_share * later_count(cfg, grid))
    return num_hidden(cfg.ratio, grid)


def target_tokens(cfg: MaskConfig, grid: TokenGrid, device) -> torch.Tensor | None:
    """Bool (N,): the tokens targets may be drawn from (the last future_steps token time steps,
    or those after the context steps); None when every token may be one."""
    if not (cfg.future or cfg.context_steps):
        return None
    check_time_steps(cfg, grid)
    steps = grid.token_steps(device)
    if cfg.context_steps:
        return steps >= cfg.context_steps
    return steps >= grid.shape[0] - future_steps(cfg.future, grid)


def context_tokens(cfg: MaskConfig, grid: TokenGrid, device) -> torch.Tensor | None:
    """Bool (N,): the tokens the context may hold (the first context_steps token time steps);
    None when it holds every token that is not hidden."""
    if not cfg.context_steps:
        return None
    check_time_steps(cfg, grid)
    return grid.token_steps(device) < cfg.context_steps


def split_context(mask: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Bool (B, N) context of hidden-token masks (B, N): every visible token, or the visible
    ones among `allowed` (N,) (context_tokens)."""
    visible = ~mask
    return visible if allowed is None else visible & allowed


def restrict(keys: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Keys (B, N) with the tokens outside `allowed` (N,) ranked last (-inf)."""
    return keys if allowed is None else keys.masked_fill(~allowed, float("-inf"))


def saliency(strategy: str, clip: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Per-token saliency float (B, N) of a saliency strategy (motion, accel, interaction)."""
    if strategy not in SALIENCY:
        raise ConfigError(f"strategy '{strategy}' has no saliency; one of {', '.join(SALIENCY)}")
    if clip.shape[1] < 3:  # every saliency differences consecutive frames at least twice
        raise DataError(f"masking.strategy={strategy}: a clip of {clip.shape[1]} frames is too "
                        "short for its saliency (needs >= 3 frames)")
    return SALIENCY[strategy](clip, grid)


def _saliency_mask(cfg: MaskConfig, clip: torch.Tensor, grid: TokenGrid,
                   generator: torch.Generator, stored: torch.Tensor | None = None,
                   allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Gumbel top-k on saliency plus a random share; random tubes where frames never change.

    `stored` (B, N) is the clips' saliency read from the shards; else it is computed here.
    """
    k = num_targets(cfg, grid)
    scores = stored.to(clip.device) if stored is not None else saliency(cfg.strategy, clip, grid)
    by_saliency = top_k_mask(restrict(gumbel_keys(scores, cfg.temperature, generator), allowed),
                             k - round(cfg.random_share * k))
    fill = restrict(uniform_keys(scores.shape, generator, scores.device), allowed)
    mixed = top_k_mask(torch.where(by_saliency, 2.0, fill), k)  # chosen first, then uniform
    tubes = top_k_mask(restrict(random_tube_keys(clip.shape[0], grid, generator, scores.device),
                                allowed), k)
    static = (clip[:, 1:] == clip[:, :-1]).flatten(1).all(dim=1, keepdim=True)  # (B, 1)
    return torch.where(static, tubes, mixed)


def make_mask_fn(cfg: MaskConfig) -> MaskFn:
    """The strategy of `cfg` as fn(clip uint8 (B, T, H, W, 3), grid, generator, saliency=None)
    -> bool (B, N). `saliency` (B, N), the clips' stored saliency, skips computing it.

    With `future`, every strategy ranks its keys among the future tokens only: the hidden tokens
    lie in the last token time steps and the context holds the first frames. With
    `context_steps`, the targets are round(target_share x the later tokens) that the strategy
    ranks first among the tokens after the first context_steps time steps (all of them at
    target_share 1); the context is the first steps (context_tokens).
    """
    cfg.validate()

    def mask_fn(clip: torch.Tensor, grid: TokenGrid, generator: torch.Generator,
                saliency: torch.Tensor | None = None) -> torch.Tensor:
        batch = clip.shape[0]
        allowed = target_tokens(cfg, grid, clip.device)                           # N or None
        if cfg.context_steps and cfg.target_share == 1.0:
            return allowed.expand(batch, -1).clone()
        k = num_targets(cfg, grid)
        if cfg.strategy == "random_tube":
            return top_k_mask(restrict(random_tube_keys(batch, grid, generator, clip.device),
                                       allowed), k)
        if cfg.strategy == "multiblock":
            keys = multiblock_keys(batch, grid, generator, clip.device, cfg.num_blocks,
                                   cfg.block_scale, tuple(cfg.aspect_ratio))
            return top_k_mask(restrict(keys, allowed), k)
        return _saliency_mask(cfg, clip, grid, generator, saliency, allowed)

    return mask_fn
