"""Checkpoints: a directory of model.safetensors + config.json + metrics.json, written atomically.

A run directory holds checkpoints/step-XXXXXXXX/ and a `latest` JSON pointer; `load_encoder`
accepts either a checkpoint directory or a run directory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ia_world.atomic import atomic_write, atomic_write_json, atomic_write_text, temp_owner_dead
from ia_world.config import as_dict, to_dataclass
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.formats import (
    CHECKPOINT_VERSION,
    METRICS_VERSION,
    UNVERSIONED,
    check_format_version,
    format_version,
)
from ia_world.formats import KEY as FORMAT_KEY
from ia_world.models import IAJEPA, ModelConfig, VideoEncoder, preset

MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"
TRAIN_STATE_FILE, TRAIN_INFO_FILE = "train_state.safetensors", "train_state.json"
LATEST_FILE, CHECKPOINT_DIR = "latest", "checkpoints"
BEST_DIR = "best"  # a run's best validation-curve weights (pretrain keep_best=)


def write_weights(path: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Write tensors as one safetensors file, atomically (CPU, contiguous): every weights file
    ia-world writes goes through here. CheckpointError naming the file when it cannot be written
    (a full disk: safetensors raises its own error type, not an OSError)."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        atomic_write(Path(path), lambda temp: save_file(cpu, temp))
    except SafetensorError as error:
        raise CheckpointError(f"{path}: cannot write ({error})".splitlines()[0]) from None
    return Path(path)


def write_model_dir(directory: str | Path, tensors: dict[str, torch.Tensor], config: dict,
                    metrics: dict | None = None, version: int = CHECKPOINT_VERSION) -> Path:
    """Write model.safetensors + config.json (+ metrics.json) into a directory, each atomically.

    The one weights writer: pretraining checkpoints and the world model both use it. config.json
    carries `format_version` (`version`: a checkpoint's, or the world model's).
    """
    directory = Path(directory)
    write_weights(directory / MODEL_FILE, tensors)
    atomic_write_text(directory / CONFIG_FILE, json.dumps(versioned(config, version), indent=1)
                      + "\n")
    if metrics is not None:
        write_metrics(directory / METRICS_FILE, metrics)
    return directory


def versioned(document: dict, version: int) -> dict:
    """The document with `format_version` first (replacing any it had)."""
    return {FORMAT_KEY: version, **{k: v for k, v in document.items() if k != FORMAT_KEY}}


def write_metrics(path: str | Path, metrics: dict) -> Path:
    """Write a metrics.json (evaluate, world_model, surprise, checkpoints) with its version."""
    atomic_write_text(Path(path), json.dumps(versioned(metrics, METRICS_VERSION), indent=1)
                      + "\n")
    return Path(path)


# a file written before format versions existed has version 1's layout: one reader reads both
CHECKPOINT_READABLE = (UNVERSIONED, CHECKPOINT_VERSION)
METRICS_READABLE = (UNVERSIONED, METRICS_VERSION)


def read_versioned(path: Path, readable: tuple[int, ...]) -> dict:
    """A JSON object of a readable format version, without its `format_version` key; else
    CheckpointError naming the file."""
    document = read_json(path)
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(document).__name__}")
    check_format_version(path, format_version(document), readable, CheckpointError)
    return {k: v for k, v in document.items() if k != FORMAT_KEY}


def read_config(directory: str | Path, readable: tuple[int, ...] = CHECKPOINT_READABLE) -> dict:
    """A checkpoint's (or world model's) config.json, format-checked, without its version."""
    return read_versioned(Path(directory) / CONFIG_FILE, readable)


def read_metrics(path: str | Path) -> dict:
    """A metrics.json, format-checked, without its version."""
    return read_versioned(Path(path), METRICS_READABLE)


def replace_dir(final: Path, fill: Callable[[Path], object]) -> Path:
    """Write a directory as one unit: fill(temp sibling), then rename it over `final` (a killed
    writer leaves the old directory or none, never a half one)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(".tmp-*"):  # left by a killed writer (never a live one's)
        if temp_owner_dead(stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    temp = final.parent / f".tmp-{os.getpid()}-{final.name}"
    temp.mkdir()
    fill(temp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temp, final)
    return final


def save_checkpoint(run_dir: str | Path, step: int, tensors: dict[str, torch.Tensor],
                    config: dict, metrics: dict,
                    train_tensors: dict[str, torch.Tensor] | None = None,
                    train_info: dict | None = None, keep: int = 2) -> Path:
    """Write run_dir/checkpoints/step-<step>/ via a temp dir + rename; point `latest` at it."""
    root = Path(run_dir) / CHECKPOINT_DIR

    def fill(temp: Path) -> None:
        write_model_dir(temp, tensors, config, metrics)
        if train_tensors is not None:
            write_weights(temp / TRAIN_STATE_FILE, train_tensors)
            atomic_write_text(temp / TRAIN_INFO_FILE, json.dumps(train_info or {}) + "\n")

    final = replace_dir(root / f"step-{step:08d}", fill)
    atomic_write_json(Path(run_dir) / LATEST_FILE, {"checkpoint": f"{CHECKPOINT_DIR}/{final.name}"})
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(run_dir: str | Path, tensors: dict[str, torch.Tensor], config: dict,
              metrics: dict) -> Path:
    """Write run_dir/best/ (model, config, metrics), replacing the previous best as one unit."""
    return replace_dir(Path(run_dir) / BEST_DIR,
                       lambda temp: write_model_dir(temp, tensors, config, metrics))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the one a run directory's `latest` points at."""
    path = Path(path)
    if (path / MODEL_FILE).is_file():
        return path
    latest = path / LATEST_FILE
    if latest.is_file():
        try:
            target = json.loads(latest.read_text())["checkpoint"]
        except (OSError, ValueError, KeyError, TypeError):  # ValueError: JSON, UTF-8
            raise CheckpointError(f"{latest}: corrupt pointer to the latest checkpoint") from None
        if (not isinstance(target, str) or Path(target).is_absolute()
                or ".." in Path(target).parts):
            raise CheckpointError(f"{latest}: points outside its run directory ({target!r})")
        return path / target
    raise CheckpointError(f"{path}: no checkpoint here (neither {MODEL_FILE} nor {LATEST_FILE})")


def read_json(path: Path) -> dict:
    """A checkpoint's JSON file, or CheckpointError naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8
        raise CheckpointError(f"{path}: unreadable ({type(error).__name__})") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's safetensors file, or CheckpointError naming it."""
    try:
        return load_file(path)
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: missing or corrupt ({error})".splitlines()[0]) from None


def checkpoint_model_config(checkpoint: Path) -> ModelConfig:
    """The ModelConfig stored in a checkpoint's config.json."""
    config = read_config(checkpoint)
    model = config.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: expected an object with a 'model' "
                              f"object, got {json.dumps(config)[:60]}")
    try:
        return to_dataclass(model, ModelConfig)
    except ConfigError as error:
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: bad model config ({error})") from None


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Strictly load `tensors` into `module`, or CheckpointError naming the file (also on a
    non-finite weight: it would surface later as a NaN feature)."""
    bad = [name for name, value in tensors.items()
           if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {bad[0]}"
                              f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}")
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: incompatible with its config.json: "
                              f"{str(error).splitlines()[1].strip()}") from None


class FrozenEncoder(nn.Module):
    """A checkpoint's encoder, frozen: encode(frames uint8 (B,T,H,W,3)) -> (B, N, D) float."""

    def __init__(self, encoder: VideoEncoder):
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.embed_dim = encoder.embed_dim
        self.grid = encoder.grid
        super().train(False)

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Stay in eval mode whatever `mode` is (SB3 calls train() on feature extractors)."""
        return super().train(False)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor | np.ndarray,
               keep: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, N, D) of a uint8 clip batch (B, T, H, W, 3); (B, M, D) of only the token
        indices `keep` (B, M) (the others are never computed)."""
        frames = torch.as_tensor(frames)
        expected = (self.grid.frames, self.grid.size, self.grid.size, 3)
        if frames.dtype != torch.uint8 or frames.ndim != 5 or tuple(frames.shape[1:]) != expected:
            raise DataError(f"encode: expected uint8 (B, {', '.join(map(str, expected))}) frames, "
                            f"got {frames.dtype} {tuple(frames.shape)}")
        device = next(self.encoder.parameters()).device
        keep = None if keep is None else keep.to(device)
        return self.encoder(frames.to(device), keep).float()

    def forward(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Same as encode."""
        return self.encode(frames)


def clip_batches(clips: Sequence[np.ndarray] | np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive uint8 batches (b, T, H, W, 3) of a sequence of clips (T, H, W, 3)."""
    for start in range(0, len(clips), batch_size):
        yield np.ascontiguousarray(np.stack(clips[start:start + batch_size]))


@torch.no_grad()
def encode_batches(encode: Callable[[torch.Tensor], torch.Tensor],
                   batches: Iterable[np.ndarray | torch.Tensor],
                   pool: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   desc: str = "encode", total: int | None = None) -> torch.Tensor:
    """Frozen tokens of uint8 clip batches, concatenated: (M, N, D), or pool(tokens) per batch."""
    outputs = []
    for batch in tqdm(batches, desc=desc, total=total, leave=False):
        tokens = encode(torch.as_tensor(batch)).float()                # b N D
        outputs.append(tokens if pool is None else pool(tokens))
    return torch.cat(outputs)


# trained: the encoder the run trains (the EMA target, or the online encoder when the target is
# frozen); target: the EMA target; encoder: the online context encoder
ENCODER_WEIGHTS = ("trained", "target", "encoder")


def trained_weights(ema_start: float) -> str:
    """The weights a run trains: "encoder" when its target is frozen (momentum 1 from the first
    step: the target stays the initialisation), else the EMA "target" (as I-JEPA evaluates)."""
    return "encoder" if ema_start >= 1.0 else "target"


def resolve_weights(checkpoint: str | Path, weights: str) -> str:
    """`weights` ("trained" resolved from the checkpoint's config) as "target" or "encoder"."""
    if weights not in ENCODER_WEIGHTS:
        raise ConfigError(f"encoder weights {weights!r} are not one of {ENCODER_WEIGHTS}")
    if weights != "trained":
        return weights
    ema_start = read_config(resolve_checkpoint(checkpoint)).get("ema_start", 0.0)
    return trained_weights(ema_start if isinstance(ema_start, int | float) else 0.0)


def load_encoder(path: str | Path, device: str | torch.device = "cpu",
                 weights: str = "trained") -> FrozenEncoder:
    """A frozen encoder of a checkpoint (or of a run directory's latest checkpoint).

    weights="trained" (default) is the encoder the run trained (`trained_weights`); "target" is
    the EMA target; "encoder" is the online context encoder.
    """
    checkpoint = resolve_checkpoint(path)
    weights = resolve_weights(checkpoint, weights)
    encoder = VideoEncoder(checkpoint_model_config(checkpoint))
    tensors = read_tensors(checkpoint / MODEL_FILE)
    prefix = f"{weights}."
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    load_weights(encoder, state, checkpoint / MODEL_FILE)
    return FrozenEncoder(encoder).to(device)


def init_seed(checkpoint: Path) -> int:
    """The seed a checkpoint's network was initialised with (config.json), checked."""
    seed = read_config(checkpoint).get("seed")
    if not isinstance(seed, int):
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: no integer init seed, so its "
                              "initialisation (the evaluation's floor) cannot be rebuilt")
    return seed


def initial_encoder(path: str | Path, device: str | torch.device = "cpu",
                    weights: str = "trained") -> FrozenEncoder:
    """The checkpoint's architecture at its initialisation, rebuilt from config.json's model and
    seed (as pretraining and `write_initial_checkpoint` build it): the evaluation's floor."""
    checkpoint = resolve_checkpoint(path)
    model_cfg = checkpoint_model_config(checkpoint)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(checkpoint))
        try:
            jepa = IAJEPA(model_cfg)
        except (ValueError, RuntimeError, AssertionError) as error:
            raise CheckpointError(f"{checkpoint / CONFIG_FILE}: the architecture cannot be "
                                  f"rebuilt ({error})".splitlines()[0]) from None
    return FrozenEncoder(getattr(jepa, resolve_weights(checkpoint, weights))).to(device)


def curve_encoders(run: str | Path) -> list[tuple[int, FrozenEncoder]]:
    """(step, frozen encoder) for the floor (step 0, `initial_encoder`) and every checkpoint the
    run kept (`checkpoints/step-*`, the weights it trained), in step order."""
    checkpoints = sorted((Path(run) / CHECKPOINT_DIR).glob("step-*"))
    if not checkpoints:
        raise CheckpointError(f"{run}: no {CHECKPOINT_DIR}/step-* to score")
    return [(0, initial_encoder(checkpoints[-1]))] + [
        (int(path.name.split("-")[1]), load_encoder(path)) for path in checkpoints]


def write_floor_checkpoint(run: str | Path, out: str | Path) -> Path:
    """A checkpoint of `run`'s architecture at its initialisation (`initial_encoder`): the
    untrained control that agents (world model, planner, RL) load like any other checkpoint."""
    checkpoint = resolve_checkpoint(run)
    return write_initial_checkpoint(out, checkpoint_model_config(checkpoint),
                                    seed=init_seed(checkpoint))


def write_initial_checkpoint(path: str | Path, model: str | ModelConfig = "tiny",
                             seed: int = 0) -> Path:
    """Write a checkpoint of a freshly initialised IA-JEPA (for tests and baselines)."""
    cfg = preset(model) if isinstance(model, str) else model
    torch.manual_seed(seed)
    jepa = IAJEPA(cfg)
    config = {"model": as_dict(cfg), "seed": seed}
    return save_checkpoint(path, 0, jepa.state_dict(), config, {"step": 0})
