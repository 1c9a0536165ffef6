"""Latent dynamics on frozen encoder latents (V-JEPA 2-AC style).

A sequence of windows, each a 16-frame clip encoded by the frozen encoder and pooled to P tokens
(B K P D), is modelled by a block-causal transformer: tokens of window k attend to the tokens of
windows <= k and predict window k+1 as a residual on window k (so it starts as copy-last).
Training combines teacher forcing (every next window from the true past) with a multi-step
rollout loss (the model's own predictions fed back). A validation share of the sequences picks the
best weights (rollout L1 checked every `eval_every` steps, step 0 included), so the returned model
is never worse on validation than copy-last, which is where it starts.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from tqdm import tqdm

from ia_world.checkpoint import CONFIG_FILE, MODEL_FILE, read_config, read_tensors, write_model_dir
from ia_world.config import check_range, to_dataclass
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.formats import WORLD_MODEL_VERSION


@dataclass
class WorldModelConfig:
    """Sizes and training schedule of the latent dynamics model."""

    latent_dim: int = 96  # D of the frozen encoder
    tokens_per_window: int = 16  # P: pooled tokens kept per window (a square number)
    max_windows: int = 16  # K at most (positional table size)
    action_dim: int = 0  # 0 = unconditioned; else the action vector is added to every token
    width: int = 128  # transformer width
    depth: int = 2  # transformer blocks
    heads: int = 4  # attention heads
    steps: int = 2000  # training steps
    batch_size: int = 32  # sequences per step
    lr: float = 1e-3  # peak; cosine decay to 0 over `steps`
    rollout_steps: int = 2  # multi-step rollout loss horizon (0 = teacher forcing only)
    # > 0: a linear outcome head on the whole rollout from window 0 is trained jointly with this
    # weight (class-balanced BCE on the episode's label), so the rollout is shaped to carry it
    outcome_loss: float = 0.0
    validation: float = 0.1  # share of training sequences that selects the best weights
    eval_every: int = 100  # steps between validation checks
    seed: int = 0  # initialisation and batch order seed

    def validate(self) -> None:
        """Range-check the sizes and schedule."""
        check_range("latent_dim", self.latent_dim, 1, 65_536)
        check_range("tokens_per_window", self.tokens_per_window, 1, 4096)
        side = round(self.tokens_per_window ** 0.5)
        if side * side != self.tokens_per_window:
            raise ConfigError(f"tokens_per_window={self.tokens_per_window} is not a "
                              "square number")
        check_range("max_windows", self.max_windows, 2, 1024)
        check_range("action_dim", self.action_dim, 0, 1024)
        check_range("width", self.width, 1, 65_536)
        check_range("depth", self.depth, 1, 256)
        check_range("heads", self.heads, 1, 256)
        if self.width % self.heads:
            raise ConfigError(f"width={self.width} is not divisible by heads={self.heads}")
        check_range("steps", self.steps, 1, 10**8)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("rollout_steps", self.rollout_steps, 0, self.max_windows - 2)
        check_range("outcome_loss", self.outcome_loss, 0.0, 1000.0)
        check_range("validation", self.validation, 0.0, 0.5)
        check_range("eval_every", self.eval_every, 1, 10**8)


def pool_window(latents: torch.Tensor, grid_shape: tuple[int, int, int],
                tokens_per_window: int) -> torch.Tensor:
    """Encoder latents of one clip (B, N, D) -> layer-normed window tokens (B, P, D).

    Time is averaged and space is average-pooled to a sqrt(P) x sqrt(P) grid.
    """
    t, h, w = grid_shape
    side = round(tokens_per_window ** 0.5)
    volume = rearrange(latents, "b (t h w) d -> b d t h w", t=t, h=h, w=w).mean(2)
    pooled = F.adaptive_avg_pool2d(volume, side)
    tokens = rearrange(pooled, "b d h w -> b (h w) d")
    return F.layer_norm(tokens, tokens.shape[-1:])


def block_causal_mask(windows: int, tokens_per_window: int) -> torch.Tensor:
    """Boolean (L, L) mask, True = blocked: token i sees token j iff window(j) <= window(i)."""
    window = torch.arange(windows).repeat_interleave(tokens_per_window)
    return window[None, :] > window[:, None]


class WorldModel(nn.Module):
    """Block-causal transformer predicting the next window's tokens (B K P D) -> (B K P D)."""

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.latent_dim, cfg.width)
        self.action_embed = nn.Linear(cfg.action_dim, cfg.width) if cfg.action_dim else None
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_windows, cfg.tokens_per_window, cfg.width))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 4 * cfg.width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.latent_dim)
        nn.init.zeros_(self.head.weight)  # start as the copy-last-window predictor
        nn.init.zeros_(self.head.bias)
        if cfg.outcome_loss:  # linear in the rollout (H P D), like the goal probe
            shape = (cfg.max_windows - 1, cfg.tokens_per_window, cfg.latent_dim)
            self.outcome_weight = nn.Parameter(torch.zeros(shape))
            self.outcome_bias = nn.Parameter(torch.zeros(()))

    def forward(self, windows: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Predictions of windows 1..K from windows 0..K-1 (residual on each window): (B K P D)."""
        _, k, p, _ = windows.shape
        if k > self.cfg.max_windows:
            raise DataError(f"world model: {k} windows > max_windows={self.cfg.max_windows}")
        x = self.embed(windows) + self.pos[:, :k]
        if self.action_embed is not None:
            x = x + self.action_embed(actions)[:, None, None]
        x = rearrange(x, "b k p c -> b (k p) c")
        x = self.blocks(x, mask=block_causal_mask(k, p).to(x.device))
        delta = rearrange(self.head(self.norm(x)), "b (k p) d -> b k p d", k=k)
        return windows + delta

    def rollout(self, context: torch.Tensor, horizon: int,
                actions: torch.Tensor | None = None) -> torch.Tensor:
        """Autoregressive future (B horizon P D) from context windows (B C P D)."""
        sequence = context
        for _ in range(horizon):
            predicted = self(sequence, actions)[:, -1:]
            sequence = torch.cat([sequence, predicted], 1)
        return sequence[:, context.shape[1]:]

    def outcome_logits(self, rolled: torch.Tensor) -> torch.Tensor:
        """The joint outcome head's logits (B,) of a rollout from window 0 (B H P D)."""
        return (rolled * self.outcome_weight[:rolled.shape[1]]).sum((1, 2, 3)) + self.outcome_bias


def world_model_loss(model: WorldModel, windows: torch.Tensor,
                     actions: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                     pos_weight: float = 1.0) -> torch.Tensor:
    """Teacher-forcing L1, the multi-step rollout L1 from the first window (B K P D) and, with
    cfg.outcome_loss and labels (B,), the outcome head's class-balanced BCE on the whole rollout.
    """
    loss = F.l1_loss(model(windows[:, :-1], actions), windows[:, 1:])
    steps = min(model.cfg.rollout_steps, windows.shape[1] - 1)
    outcome = labels is not None and model.cfg.outcome_loss > 0
    if steps == 0 and not outcome:
        return loss
    rolled = model.rollout(windows[:, :1], windows.shape[1] - 1 if outcome else steps, actions)
    if steps:
        loss = loss + F.l1_loss(rolled[:, :steps], windows[:, 1:1 + steps])
    if outcome:
        loss = loss + model.cfg.outcome_loss * F.binary_cross_entropy_with_logits(
            model.outcome_logits(rolled), labels.float(), pos_weight=torch.tensor(pos_weight))
    return loss


def train_world_model(cfg: WorldModelConfig, windows: torch.Tensor,
                      actions: torch.Tensor | None = None,
                      labels: torch.Tensor | None = None) -> WorldModel:
    """Fit a WorldModel on window sequences (E K P D) (and actions (E A) if conditioned; labels
    (E,) for the joint outcome head when cfg.outcome_loss > 0).

    The last `cfg.validation` share of the sequences is held out to pick the best weights: by
    the one-step rollout L1, plus outcome_loss x the outcome BCE when the head is trained.
    """
    if windows.ndim != 4 or windows.shape[2:] != (cfg.tokens_per_window, cfg.latent_dim):
        raise DataError(f"train_world_model: expected windows (E, K, {cfg.tokens_per_window}, "
                        f"{cfg.latent_dim}), got {tuple(windows.shape)}")
    if cfg.outcome_loss and labels is None:
        raise DataError("train_world_model: outcome_loss > 0 needs the episodes' labels")
    held = math.ceil(cfg.validation * len(windows))
    if held >= len(windows):
        raise DataError(f"train_world_model: {len(windows)} sequences are too few for "
                        f"validation={cfg.validation}")
    cut = len(windows) - held

    def part(rows: torch.Tensor | None, validation: bool) -> torch.Tensor | None:
        return None if rows is None else rows[cut:] if validation else rows[:cut]

    fit, fit_actions, fit_labels = (part(x, False) for x in (windows, actions, labels))
    val, val_actions, val_labels = (part(x, True) for x in (windows, actions, labels))
    positive = fit_labels.float().mean().clamp(1e-3, 1 - 1e-3) if labels is not None else 0.5
    pos_weight = float((1 - positive) / positive)
    torch.manual_seed(cfg.seed)
    model = WorldModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.steps)
    generator = torch.Generator().manual_seed(cfg.seed)
    best_error, best_state = float("inf"), None
    progress = tqdm(range(cfg.steps + 1), desc="world model", leave=False)
    for step in progress:
        if held and (step % cfg.eval_every == 0 or step == cfg.steps):
            error = validation_error(model.eval(), val, val_actions, val_labels, pos_weight)
            model.train()
            if error < best_error:
                best_error, best_state = error, copy.deepcopy(model.state_dict())
            progress.set_postfix(val_error=f"{best_error:.4g}")
        if step == cfg.steps:
            break
        index = torch.randint(len(fit), (cfg.batch_size,), generator=generator)
        loss = world_model_loss(model, fit[index],
                                fit_actions[index] if fit_actions is not None else None,
                                fit_labels[index] if fit_labels is not None else None,
                                pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def validation_error(model: WorldModel, windows: torch.Tensor, actions: torch.Tensor | None,
                     labels: torch.Tensor | None, pos_weight: float) -> float:
    """What picks the best weights: one-step rollout L1 (+ outcome_loss x the outcome BCE)."""
    error = rollout_errors(model, windows, 1, actions)["rollout_l1"]
    if not model.cfg.outcome_loss:
        return error
    with torch.no_grad():
        rolled = model.rollout(windows[:, :1], windows.shape[1] - 1, actions)
        bce = F.binary_cross_entropy_with_logits(model.outcome_logits(rolled), labels.float(),
                                                 pos_weight=torch.tensor(pos_weight))
    return error + model.cfg.outcome_loss * float(bce)


def rollout_errors(model: WorldModel, windows: torch.Tensor, context: int = 1,
                   actions: torch.Tensor | None = None) -> dict[str, float]:
    """Mean L1 of the rollout vs copying the last context window, on held-out (E K P D)."""
    with torch.no_grad():
        future = windows[:, context:]
        rolled = model.rollout(windows[:, :context], future.shape[1], actions)
        copy = repeat(windows[:, context - 1], "e p d -> e k p d", k=future.shape[1])
    return {"rollout_l1": float(F.l1_loss(rolled, future)),
            "copy_last_l1": float(F.l1_loss(copy, future))}


def window_errors(model: WorldModel, windows: torch.Tensor,
                  actions: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher-forced L1 error of each next-window prediction: (E K P D) -> (E, K-1)."""
    with torch.no_grad():
        return (model(windows[:, :-1], actions) - windows[:, 1:]).abs().mean((2, 3))


def save_world_model(model: WorldModel, directory: str | Path,
                     extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the model (+ extra tensors) and its config as a checkpoint directory, atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"extra.{k}": v for k, v in (extra or {}).items()})
    return write_model_dir(directory, tensors, asdict(model.cfg), version=WORLD_MODEL_VERSION)


def load_world_model(directory: str | Path) -> tuple[WorldModel, dict[str, torch.Tensor]]:
    """(WorldModel in eval mode, extra tensors) from a directory written by save_world_model.

    Version 1 (the one format read) holds the goal probes, `surprise.reference` and the
    `train.split` / `train.fold` it was trained on; an unversioned world model is refused.
    """
    directory = Path(directory)
    for name in (MODEL_FILE, CONFIG_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory / name}: missing "
                                  "(train it with `ia-world world_model`)")
    try:
        cfg = to_dataclass(read_config(directory, (WORLD_MODEL_VERSION,)), WorldModelConfig)
    except ConfigError as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: bad world model config "
                              f"({error})") from None
    tensors = read_tensors(directory / MODEL_FILE)
    model = WorldModel(cfg)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{directory / MODEL_FILE}: does not match its config "
                              f"({str(error).splitlines()[0]})") from None
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return model.eval(), extra
