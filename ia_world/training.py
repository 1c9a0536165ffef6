"""`ia-world pretrain`: IA-JEPA pretraining with exact resume, a divergence guard and DDP.

The data order and the masks are functions of (seed, step, rank), so a run killed and resumed
from its last checkpoint reproduces the uninterrupted loss curve on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler, default_collate
from tqdm import tqdm

from ia_world.atomic import atomic_write_bytes
from ia_world.checkpoint import (
    BEST_DIR,
    CONFIG_FILE,
    ENCODER_WEIGHTS,
    LATEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TRAIN_INFO_FILE,
    TRAIN_STATE_FILE,
    load_weights,
    read_config,
    read_json,
    read_metrics,
    read_tensors,
    resolve_checkpoint,
    save_best,
    save_checkpoint,
    trained_weights,
)
from ia_world.config import (
    CONFIG_DIR,
    as_dict,
    check_choice,
    check_path,
    check_range,
    config_diff,
    to_dataclass,
    validate_tree,
)
from ia_world.data.generator import EnvConfig
from ia_world.data.live import LiveClips
from ia_world.data.sources import DataConfig, DataSource, clip_dataset, pretraining_seeds
from ia_world.errors import CheckpointError, ConfigError, DataError, IAWorldError, from_worker
from ia_world.eval.curves import CURVE_FIELDS, CurveConfig, curve_metrics, curve_splits
from ia_world.eval.spectrum import centred_rankme, rankme
from ia_world.masking import MaskConfig, make_mask_fn
from ia_world.masking.saliency import SALIENCY, STORED_PATCH, TOKEN_CLASSES, token_classes
from ia_world.masking.strategies import check_time_steps, context_tokens, split_context
from ia_world.models import IAJEPA, ModelConfig
from ia_world.models.jepa import REGULARIZER_POOLS, REGULARIZERS, StepOutput
from ia_world.runlock import run_lock

LOG_FILE = "log.csv"
# loss = loss_static + loss_moving + loss_interacting (each token class's share of the JEPA
# loss) + loss_regularizer; share_*: the hidden tokens' class shares; probe_*: the learning
# curves (ia_world/eval/curves.py; step 0 is the floor); data_s, compute_s: seconds per step;
# target_std, rankme*: of the layer-normed targets; *_norm: mean token L2 norm (targets before
# their layer norm)
LOG_FIELDS = ("step", "loss", *(f"loss_{name}" for name in TOKEN_CLASSES), "loss_regularizer",
              "share_moving", "share_interacting", "lr", "momentum", "target_std", "rankme",
              "rankme_centred", "target_norm", "context_norm", "context_rankme_centred",
              "clips_per_s", "data_s", "compute_s", *CURVE_FIELDS)


class DivergenceError(IAWorldError):
    """Training produced a non-finite or exploding loss; the last good checkpoint is kept."""


@dataclass
class PretrainConfig:
    """`ia-world pretrain`: data, env, model, masking and the optimisation schedule."""

    data: DataConfig = field(default_factory=DataConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskConfig = field(default_factory=MaskConfig)
    out: str = "runs/pretrain"  # run directory: log.csv, checkpoints/step-*/, latest
    seed: int = 0  # data order, masks and init are functions of (seed, step)
    steps: int = 1000  # training steps (a resumed run may raise it)
    batch_size: int = 16  # clips per step per rank
    lr: float = 5e-4  # peak learning rate (linear warmup, cosine decay to final_lr)
    final_lr: float = 1e-6  # learning rate at the last step
    warmup_steps: int = 50  # linear warmup steps
    weight_decay: float = 0.04  # AdamW weight decay (matrices only)
    grad_clip: float = 1.0  # max gradient norm (> 0)
    ema_start: float = 0.996  # target-encoder momentum, linear to ema_end over the run
    ema_end: float = 1.0  # target momentum at the last step
    loss: str = "l1"  # l1 | l2
    regularizer: str = "none"  # anti-collapse term on the context latents: none | sigreg | vicreg
    regularizer_weight: float = 0.05  # weight of the regularizer, added to the JEPA loss
    regularizer_pool: str = "tokens"  # regularizer's samples: tokens | frames (per-step means)
    centre_positions: bool = False  # targets, regularized latents: less their per-position mean
    moving_weight: float = 1.0  # loss weight of a hidden moving token (a static one: 1)
    interacting_weight: float = 1.0  # loss weight of a hidden interacting token (token_classes)
    probe_every: int = 0  # steps between learning-curve probes (0 = none; ia_world/eval/curves.py)
    probe: CurveConfig = field(default_factory=CurveConfig)  # the learning curves' splits
    probe_weights: str = "trained"  # encoder the curves probe: trained (the run's), target, encoder
    keep_best: str = "probe_mean_speed"  # curve field whose best step's weights go to <out>/best/
    max_loss: float = 100.0  # divergence guard: stop above this or on a non-finite loss
    log_every: int = 10  # steps between log.csv rows
    checkpoint_every: int = 200  # steps between checkpoints
    keep_checkpoints: int = 2  # checkpoints kept on disk
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool = False  # torch.compile on CUDA

    def validate(self) -> None:
        """Raise ConfigError on out-of-range values."""
        check_path("out", self.out)
        for key in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
            check_range(key, getattr(self, key), 1, 10**9)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("final_lr", self.final_lr, 0.0, self.lr)
        check_range("warmup_steps", self.warmup_steps, 0, 10**9)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        if not self.grad_clip > 0:
            raise ConfigError(f"grad_clip={self.grad_clip} must be > 0")
        check_range("ema_start", self.ema_start, 0.0, 1.0)
        check_range("ema_end", self.ema_end, self.ema_start, 1.0)
        if not self.max_loss > 0:
            raise ConfigError(f"max_loss={self.max_loss} must be > 0")
        check_choice("loss", self.loss, ("l1", "l2"))
        check_choice("regularizer", self.regularizer, REGULARIZERS)
        check_choice("regularizer_pool", self.regularizer_pool, REGULARIZER_POOLS)
        check_range("regularizer_weight", self.regularizer_weight, 0.0, 1e4)
        for key in ("moving_weight", "interacting_weight"):
            if not 0 < getattr(self, key) <= 1e4:
                raise ConfigError(f"{key}={getattr(self, key)} must be in (0, 1e4]")
        check_range("probe_every", self.probe_every, 0, 10**9)
        check_choice("keep_best", self.keep_best, ("", *CURVE_FIELDS))
        check_choice("probe_weights", self.probe_weights, ENCODER_WEIGHTS)
        try:
            check_time_steps(self.masking, self.model.grid)
        except ConfigError as error:
            raise ConfigError(f"masking.{error}") from None
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


def preprocess_overrides(overrides: list[str]) -> list[str]:
    """Turn `data=/some/dir` into `data=shards data.path=/some/dir`."""
    options = {p.stem for p in (CONFIG_DIR / "data").glob("*.yaml")}
    result = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "data" and value not in options:
            result += ["data=shards", f"data.path={value}"]
        else:
            result.append(item)
    return result


def learning_rate(cfg: PretrainConfig, step: int) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.final_lr at cfg.steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.final_lr + 0.5 * (cfg.lr - cfg.final_lr) * (1 + math.cos(math.pi * progress))


def ema_momentum(cfg: PretrainConfig, step: int) -> float:
    """Target-encoder momentum, linear from ema_start to ema_end over the run."""
    return cfg.ema_start + (cfg.ema_end - cfg.ema_start) * step / cfg.steps


class StepSampler(Sampler):
    """Endless clip indices: clip j of rank r at step s = permuted position (s R + r) B + j."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, rank: int,
                 world_size: int):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size

    def __iter__(self) -> Iterator[int]:
        epoch, permutation = -1, None
        step = self.start_step
        while True:
            for j in range(self.batch_size):
                position = (step * self.world_size + self.rank) * self.batch_size + j
                clip_epoch, index = divmod(position, self.size)
                if clip_epoch != epoch:
                    generator = torch.Generator().manual_seed(self.seed * 1_000_003 + clip_epoch)
                    epoch, permutation = clip_epoch, torch.randperm(self.size, generator=generator)
                yield int(permutation[index])
            step += 1


class MaskingCollate:
    """Collate clip dicts and add their mask (B N, the hidden targets), context (B N) and token
    classes (B N), computed in the DataLoader workers.

    As in I-JEPA's mask collator, masking runs beside the training step rather than in it. The
    mask generator is seeded by the run seed and the batch's (episode, start) pairs, so a batch
    gets the same mask after a resume and whichever worker builds it. `mask_saliency`: the
    stored saliency the mask uses (None: the mask computes its own, if any). `context` (N,):
    the tokens the context may hold (masking.context_tokens; None: every visible token).
    """

    def __init__(self, mask_fn, grid, seed: int, mask_saliency: str | None = None,
                 context: torch.Tensor | None = None):
        self.mask_fn, self.grid, self.seed = mask_fn, grid, seed
        self.mask_saliency, self.context = mask_saliency, context

    def __call__(self, items: list[dict]) -> dict:
        stored = [item.pop("saliency", {}) for item in items]  # from shards that store it
        batch = default_collate(items)
        key = [self.seed, *batch["episode"].tolist(), *batch["start"].tolist()]
        seed = int(np.random.SeedSequence([abs(int(k)) for k in key]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)

        def stacked(name: str | None) -> torch.Tensor | None:
            present = name is not None and all(name in s for s in stored)
            return torch.stack([s[name] for s in stored]) if present else None

        batch["mask"] = self.mask_fn(batch["frames"], self.grid, generator,
                                     saliency=stacked(self.mask_saliency))
        batch["context"] = split_context(batch["mask"], self.context)
        batch["token_class"] = token_classes(batch["frames"], self.grid, stacked("interaction"))
        return batch


def mask_saliency(cfg: PretrainConfig) -> str | None:
    """The stored saliency the masks read: the strategy's, when it has one, masking.stored is
    on and the grid's patch is the stored one; else None."""
    stored = cfg.masking.stored and cfg.model.grid.patch == STORED_PATCH
    return cfg.masking.strategy if stored and cfg.masking.strategy in SALIENCY else None


def use_stored_saliency(dataset, cfg: PretrainConfig) -> None:
    """Let the shard clip datasets under `dataset` (alone or in a mix) hand out the saliency
    their shards store: the masks' (mask_saliency) and the interaction saliency that marks
    interacting tokens (token_classes), when the grid's patch is the stored one."""
    grid = cfg.model.grid
    if grid.patch != STORED_PATCH:
        return
    names = tuple(sorted({"interaction", mask_saliency(cfg)} - {None}))
    for source in getattr(dataset, "sources", [dataset]):
        if hasattr(source, "use_stored_saliency"):
            source.use_stored_saliency(names, grid.tubelet_t)


def make_loader(cfg: PretrainConfig, mask_fn, start_step: int, rank: int,
                world_size: int) -> DataLoader:
    """Batches of clip dicts with masks, in an order fixed by (seed, step, rank)."""
    grid = cfg.model.grid
    common = {"batch_size": cfg.batch_size, "num_workers": cfg.data.num_workers,
              "pin_memory": torch.cuda.is_available(),
              "collate_fn": MaskingCollate(mask_fn, grid, cfg.seed, mask_saliency(cfg),
                                           context_tokens(cfg.masking, grid, "cpu")),
              # its own generator: starting the loader must not draw from torch's global RNG,
              # which the checkpoint restores (SIGReg's directions come from it)
              "generator": torch.Generator().manual_seed(cfg.seed)}
    if cfg.data.source == DataSource.live:
        live = LiveClips(cfg.env.id, grid.frames, cfg.data.frame_stride, grid.size, cfg.seed,
                         block=cfg.batch_size, start_block=start_step, rank=rank,
                         world_size=world_size, env_kwargs=cfg.env.kwargs)
        return DataLoader(live, **common)
    clips = clip_dataset(cfg.data, grid.frames, grid.size, cfg.seed)
    use_stored_saliency(clips, cfg)
    if cfg.data.source == DataSource.mix and rank == 0:
        print(f"data mix: clips per source {clips.counts()}")
    sampler = StepSampler(len(clips), cfg.batch_size, cfg.seed, start_step, rank, world_size)
    return DataLoader(clips, sampler=sampler, **common)


def setup_distributed(cfg: PretrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world_size, device) from torchrun's env vars; joins the process group if > 1."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("device=cuda but CUDA is not available")
    device = torch.device("cpu")
    if use_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return rank, world_size, device


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """AdamW state as (tensors for safetensors, JSON-able param groups)."""
    state = optimizer.state_dict()
    tensors = {f"optim.{index}.{key}": torch.as_tensor(value)
               for index, slots in state["state"].items() for key, value in slots.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    return tensors, {"param_groups": state["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, info: dict) -> None:
    """Inverse of optimizer_state (also restores the torch RNG)."""
    slots: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            slots.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": slots, "param_groups": info["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])


# keys a resumed run may change: how long it runs, how it logs, where and on how many workers
RESUMABLE_KEYS = frozenset({"steps", "log_every", "checkpoint_every", "keep_checkpoints", "out",
                            "device", "data.num_workers", "compile", "masking.stored",
                            "probe_every", "probe.cache", "keep_best"})


def with_defaults(stored: dict, defaults: dict) -> dict:
    """A stored config with the keys it predates filled in from the schema's defaults.

    New keys default to the behaviour runs had before them, so an older run resumes.
    """
    for key, value in defaults.items():
        if key not in stored:
            stored[key] = value
        elif isinstance(value, dict) and isinstance(stored[key], dict):
            with_defaults(stored[key], value)
    return stored


def read_pretrain_config(checkpoint: Path) -> dict:
    """A checkpoint's config.json as stored (format-checked, without its version), validated
    (the keys it predates filled in from the defaults) through PretrainConfig, types included;
    CheckpointError naming it."""
    path = checkpoint / CONFIG_FILE
    stored = read_config(checkpoint)  # format-checked, a JSON object, without its version
    try:
        to_dataclass(with_defaults(copy.deepcopy(stored), as_dict(PretrainConfig())),
                     PretrainConfig)
    except ConfigError as error:
        raise CheckpointError(f"{path}: not a valid pretraining config ({error})") from None
    return stored


def check_resumable(checkpoint: Path, config: dict) -> None:
    """Refuse to resume a checkpoint whose stored config differs (other than RESUMABLE_KEYS)."""
    stored = with_defaults(read_pretrain_config(checkpoint), as_dict(PretrainConfig()))
    changed = config_diff(stored, config, RESUMABLE_KEYS)
    if changed:
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: this run was started with another "
                              f"config ({'; '.join(changed[:4])}"
                              f"{'; ...' if len(changed) > 4 else ''}); use the same settings "
                              "to resume or another out=")


def best_value(run_dir: Path, key: str) -> float:
    """The `key` curve value of the run's best/ weights (-inf if none kept yet)."""
    path = run_dir / BEST_DIR / METRICS_FILE
    if not key or not path.is_file():
        return -math.inf
    value = read_metrics(path).get(key)
    if not isinstance(value, (int, float)):
        raise CheckpointError(f"{path}: no numeric {key} (tampered or corrupt)")
    return float(value)


def resume(run_dir: Path, model: IAJEPA, optimizer: torch.optim.Optimizer,
           config: dict) -> int:
    """Load the run's latest checkpoint into model and optimizer; returns its step (0 if none)."""
    if not (run_dir / LATEST_FILE).is_file():
        return 0
    checkpoint = resolve_checkpoint(run_dir)
    check_resumable(checkpoint, config)
    load_weights(model, read_tensors(checkpoint / MODEL_FILE), checkpoint / MODEL_FILE)
    info = read_json(checkpoint / TRAIN_INFO_FILE)
    if not isinstance(info, dict) or type(info.get("step")) is not int or info["step"] < 0:
        raise CheckpointError(f"{checkpoint / TRAIN_INFO_FILE}: no step (tampered or corrupt "
                              "train state)")
    try:
        restore_optimizer(optimizer, read_tensors(checkpoint / TRAIN_STATE_FILE), info)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        raise CheckpointError(f"{checkpoint / TRAIN_STATE_FILE} (with {TRAIN_INFO_FILE}): "
                              f"cannot restore the optimizer and RNG state ({message}); "
                              "tampered or corrupt train state: use another out=") from None
    return info["step"]


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the CSV log rows up to `last_step` (rows after the resumed checkpoint are redone;
    from step 0, the floor's probe row too)."""
    rows = []
    if path.is_file():
        try:
            with path.open() as handle:
                rows = [row for row in csv.DictReader(handle)
                        if last_step > 0 and int(row["step"]) <= last_step]
        except (KeyError, ValueError, TypeError, csv.Error) as error:  # ValueError: UTF-8 too
            raise DataError(f"{path}: not this run's log ({type(error).__name__}: {error}); "
                            "restore it or delete it to start the log afresh") from None
    lines = [",".join(LOG_FIELDS)] + [",".join(row.get(k) or "" for k in LOG_FIELDS)
                                      for row in rows]  # columns a row lacks stay empty
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def write_log_row(path: Path, row: dict) -> None:
    """Append one row of metrics to the CSV log (a field the row lacks stays empty)."""
    def cell(value) -> str:
        return f"{value:.6g}" if isinstance(value, float) else "" if value is None else str(value)

    with path.open("a") as handle:
        handle.write(",".join(cell(row.get(k)) for k in LOG_FIELDS) + "\n")


def tensorboard_writer(run_dir: Path):
    """A TensorBoard SummaryWriter when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def token_sample(latents: torch.Tensor) -> np.ndarray:
    """The first 2,048 tokens of latents (B, N, D) as a float array: what the spectra are of."""
    return latents.reshape(-1, latents.shape[-1])[:2048].float().cpu().numpy()   # (B N) D


def target_stats(targets: torch.Tensor) -> tuple[float, float, float]:
    """(mean per-dim std, RankMe, centred RankMe) of target latents (B, Nt, D): all fall on
    collapse; the centred one also when the latents collapse to a constant offset."""
    sample = token_sample(targets)
    std = targets.reshape(-1, targets.shape[-1]).float().std(0).mean()
    return float(std), rankme(sample), centred_rankme(sample)


def build_optimizer(cfg: PretrainConfig, model: IAJEPA) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms or positions)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def check_divergence(loss: float, grad_norm: float, step: int, cfg: PretrainConfig,
                     run_dir: Path) -> None:
    """Raise DivergenceError on a non-finite loss or gradient, or a loss above cfg.max_loss."""
    if not (math.isfinite(loss) and math.isfinite(grad_norm)) or loss > cfg.max_loss:
        raise DivergenceError(f"loss {loss} (grad norm {grad_norm}) at step {step}, max_loss="
                              f"{cfg.max_loss}: stopped before the update; the last good "
                              f"checkpoint is kept under {run_dir}")


def forward_backward(step_fn, model: IAJEPA, frames: torch.Tensor, mask: torch.Tensor,
                     grad_clip: float, use_amp: bool, token_weight: torch.Tensor | None = None,
                     context: torch.Tensor | None = None) -> tuple[float, float, StepOutput]:
    """Loss (averaged over ranks), backward and clipping; returns (loss, grad norm, the step's
    output)."""
    with torch.autocast(frames.device.type, torch.bfloat16, enabled=use_amp):
        output = step_fn(frames, mask, token_weight, context)
    loss_value = output.loss.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(loss_value, op=dist.ReduceOp.AVG)
    model.zero_grad(set_to_none=True)
    output.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    return float(loss_value), float(grad_norm), output


def loss_parts(output: StepOutput, token_class: torch.Tensor) -> dict[str, float]:
    """The step's loss split by hidden-token class (they sum to the logged loss with
    loss_regularizer) and the classes' shares of the hidden tokens."""
    hidden = torch.gather(token_class.to(output.target_idx.device), 1, output.target_idx)
    parts = {f"loss_{name}": float(output.token_loss[hidden == c].sum())
             for c, name in enumerate(TOKEN_CLASSES)}
    parts["loss_regularizer"] = float(output.regularizer)
    for c, name in enumerate(TOKEN_CLASSES[1:], start=1):
        parts[f"share_{name}"] = float((hidden == c).float().mean())
    return parts


def token_weights(cfg: PretrainConfig, token_class: torch.Tensor) -> torch.Tensor | None:
    """Per-token loss weights (B, N) from the token classes; None when every weight is 1."""
    if cfg.moving_weight == cfg.interacting_weight == 1.0:
        return None
    weights = torch.tensor([1.0, cfg.moving_weight, cfg.interacting_weight])
    return weights.to(token_class.device)[token_class]


def pretrain(cfg: PretrainConfig) -> Path:
    """Pretrain (or resume) an encoder into cfg.out; returns the run directory."""
    metrics = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        done = (f"loss {metrics['loss']:.4f}, target std {metrics['target_std']:.3f}, RankMe "
                f"{metrics['rankme']:.1f}" if "loss" in metrics else "nothing left to train")
        print(f"pretrain: step {metrics['step']}, {done}; checkpoint "
              f"{resolve_checkpoint(cfg.out)}")
    return Path(cfg.out)


def train(cfg: PretrainConfig, mask_fn=None) -> dict:
    """Pretrain (or resume) into cfg.out; returns the final metrics. Joins torchrun's group."""
    validate_tree(cfg)
    joins_group = not dist.is_initialized()
    # rank 0 writes the run directory: it alone holds its lock (taken before any work)
    lock = run_lock(cfg.out) if int(os.environ.get("RANK", 0)) == 0 else contextlib.nullcontext()
    with lock:
        rank, world_size, device = setup_distributed(cfg)
        try:
            return pretrain_loop(cfg, mask_fn or make_mask_fn(cfg.masking), rank, world_size,
                                 device)
        finally:
            if joins_group and dist.is_initialized():
                dist.destroy_process_group()


def pretrain_loop(cfg: PretrainConfig, mask_fn, rank: int, world_size: int,
                  device: torch.device) -> dict:
    """The training loop of one rank; rank 0 logs and checkpoints."""
    run_dir = Path(cfg.out)
    config = as_dict(cfg)
    torch.manual_seed(cfg.seed)
    model = IAJEPA(cfg.model, cfg.loss, cfg.regularizer, cfg.regularizer_weight,
                   cfg.regularizer_pool, cfg.centre_positions).to(device)
    optimizer = build_optimizer(cfg, model)
    start_step = resume(run_dir, model, optimizer, config)
    log_path = run_dir / LOG_FILE
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, start_step)
    writer = tensorboard_writer(run_dir) if rank == 0 else None
    ddp = DistributedDataParallel(model) if world_size > 1 else model
    step_fn = torch.compile(ddp) if cfg.compile and device.type == "cuda" else ddp
    use_amp = cfg.amp and device.type == "cuda"
    batches = iter(make_loader(cfg, mask_fn, start_step, rank, world_size))
    probe = (curve_splits(cfg.probe, cfg.env, cfg.model.grid,
                          frozenset(pretraining_seeds(config)))
             if rank == 0 and cfg.probe_every else None)
    served = trained_weights(cfg.ema_start) if cfg.probe_weights == "trained" else cfg.probe_weights
    probed_encoder = getattr(model, served)  # model.target | model.encoder
    if probe is not None and start_step == 0:  # the floor: the initialisation's probes
        write_log_row(log_path, {"step": 0, **curve_metrics(probed_encoder, probe, cfg.model.grid)})
    metrics: dict = {"step": start_step}
    best = best_value(run_dir, cfg.keep_best) if start_step else -math.inf
    clock, waited, computed = time.perf_counter(), 0.0, 0.0
    for step in tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps,
                     disable=rank != 0, desc="pretrain"):
        started = time.perf_counter()
        try:
            batch = next(batches)
        except IAWorldError as error:  # from a DataLoader worker: its one line, not a traceback
            raise from_worker(error) from None
        fetched = time.perf_counter()
        waited += fetched - started
        frames, mask = batch["frames"], batch["mask"].to(device)  # B T H W 3 uint8, B N
        context = batch["context"].to(device)                                # B N
        lr, momentum = learning_rate(cfg, step), ema_momentum(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        token_class = batch["token_class"]                                   # B N
        loss, grad_norm, output = forward_backward(step_fn, model, frames.to(device), mask,
                                                   cfg.grad_clip, use_amp,
                                                   token_weights(cfg, token_class.to(device)),
                                                   context)
        check_divergence(loss, grad_norm, step + 1, cfg, run_dir)
        optimizer.step()
        model.update_target(momentum)
        computed += time.perf_counter() - fetched
        done = step + 1
        probed = probe is not None and (done % cfg.probe_every == 0 or done == cfg.steps)
        if rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps or probed):
            std, effective_rank, centred_rank = target_stats(output.targets)
            elapsed, clock = time.perf_counter() - clock, time.perf_counter()
            steps_done = done - max(metrics["step"], start_step)
            metrics = {"step": done, "loss": loss, "lr": lr, "momentum": momentum,
                       "target_std": std, "rankme": effective_rank,
                       "rankme_centred": centred_rank,
                       "target_norm": float(output.target_norm),
                       "context_norm": float(output.context.float().norm(dim=-1).mean()),
                       "context_rankme_centred": centred_rankme(token_sample(output.context)),
                       "clips_per_s": steps_done * cfg.batch_size * world_size / elapsed,
                       "data_s": waited / steps_done, "compute_s": computed / steps_done,
                       **loss_parts(output, token_class)}
            if probed:  # its time is not training time: the clock restarts after it
                metrics.update(curve_metrics(probed_encoder, probe, cfg.model.grid))
                if cfg.keep_best and metrics[cfg.keep_best] > best:
                    best = metrics[cfg.keep_best]
                    save_best(run_dir, model.state_dict(), config, metrics)
                clock = time.perf_counter()
            waited = computed = 0.0
            write_log_row(log_path, metrics)
            if writer is not None:
                for key, value in metrics.items():
                    writer.add_scalar(key, value, done)
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            train_tensors, info = optimizer_state(optimizer)
            save_checkpoint(run_dir, done, model.state_dict(), config, metrics, train_tensors,
                            dict(info, step=done), keep=cfg.keep_checkpoints)
    if writer is not None:
        writer.close()
    if world_size > 1:
        dist.barrier()
    return metrics
