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

from ia_world.atomic import atomic_write, atomic_write_json, atomic_write_text
from ia_world.config import as_dict, to_dataclass
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.models import IAJEPA, ModelConfig, VideoEncoder, preset

MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"
TRAIN_STATE_FILE, TRAIN_INFO_FILE = "train_state.safetensors", "train_state.json"
LATEST_FILE, CHECKPOINT_DIR = "latest", "checkpoints"


def write_model_dir(directory: str | Path, tensors: dict[str, torch.Tensor], config: dict,
                    metrics: dict | None = None) -> Path:
    """Write model.safetensors + config.json (+ metrics.json) into a directory, each atomically.

    The one weights writer: pretraining checkpoints and the world model both use it.
    """
    directory = Path(directory)
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(directory / MODEL_FILE, lambda temp: save_file(cpu, temp))
    atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=1) + "\n")
    if metrics is not None:
        atomic_write_text(directory / METRICS_FILE, json.dumps(metrics, indent=1) + "\n")
    return directory


def save_checkpoint(run_dir: str | Path, step: int, tensors: dict[str, torch.Tensor],
                    config: dict, metrics: dict,
                    train_tensors: dict[str, torch.Tensor] | None = None,
                    train_info: dict | None = None, keep: int = 2) -> Path:
    """Write run_dir/checkpoints/step-<step>/ via a temp dir + rename; point `latest` at it."""
    root = Path(run_dir) / CHECKPOINT_DIR
    final = root / f"step-{step:08d}"
    for stale in root.glob(".tmp-*"):  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    temp = root / f".tmp-{os.getpid()}-{final.name}"
    temp.mkdir(parents=True)
    write_model_dir(temp, tensors, config, metrics)
    if train_tensors is not None:
        cpu = {k: v.detach().cpu().contiguous() for k, v in train_tensors.items()}
        atomic_write(temp / TRAIN_STATE_FILE, lambda path: save_file(cpu, path))
        atomic_write_text(temp / TRAIN_INFO_FILE, json.dumps(train_info or {}) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temp, final)
    atomic_write_json(Path(run_dir) / LATEST_FILE, {"checkpoint": f"{CHECKPOINT_DIR}/{final.name}"})
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the one a run directory's `latest` points at."""
    path = Path(path)
    if (path / MODEL_FILE).is_file():
        return path
    latest = path / LATEST_FILE
    if latest.is_file():
        try:
            return path / json.loads(latest.read_text())["checkpoint"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise CheckpointError(f"{latest}: corrupt pointer to the latest checkpoint") from None
    raise CheckpointError(f"{path}: no checkpoint here (neither {MODEL_FILE} nor {LATEST_FILE})")


def read_json(path: Path) -> dict:
    """A checkpoint's JSON file, or CheckpointError naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable ({type(error).__name__})") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's safetensors file, or CheckpointError naming it."""
    try:
        return load_file(path)
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: missing or corrupt ({error})".splitlines()[0]) from None


def checkpoint_model_config(checkpoint: Path) -> ModelConfig:
    """The ModelConfig stored in a checkpoint's config.json."""
    config = read_json(checkpoint / CONFIG_FILE)
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: expected an object with a 'model' "
                              f"object, got {json.dumps(config)[:60]}")
    try:
        return to_dataclass(model, ModelConfig)
    except ConfigError as error:
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: bad model config ({error})") from None


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Strictly load `tensors` into `module`, or CheckpointError naming the file."""
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


ENCODER_WEIGHTS = ("target", "encoder")  # the EMA target, or the online context encoder


def load_encoder(path: str | Path, device: str | torch.device = "cpu",
                 weights: str = "target") -> FrozenEncoder:
    """A frozen encoder of a checkpoint (or of a run directory's latest checkpoint).

    weights="target" (default, as I-JEPA evaluates) is the EMA target; "encoder" is the online
    context encoder, which is further from its initialisation in short runs (the EMA lags).
    """
    if weights not in ENCODER_WEIGHTS:
        raise ConfigError(f"encoder weights {weights!r} are not one of {ENCODER_WEIGHTS}")
    checkpoint = resolve_checkpoint(path)
    encoder = VideoEncoder(checkpoint_model_config(checkpoint))
    tensors = read_tensors(checkpoint / MODEL_FILE)
    prefix = f"{weights}."
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    load_weights(encoder, state, checkpoint / MODEL_FILE)
    return FrozenEncoder(encoder).to(device)


def initial_encoder(path: str | Path, device: str | torch.device = "cpu",
                    weights: str = "target") -> FrozenEncoder:
    """The checkpoint's architecture at its initialisation, rebuilt from config.json's model and
    seed (as pretraining and `write_initial_checkpoint` build it): the evaluation's floor."""
    checkpoint = resolve_checkpoint(path)
    config = read_json(checkpoint / CONFIG_FILE)
    if not isinstance(config.get("seed"), int):
        raise CheckpointError(f"{checkpoint / CONFIG_FILE}: no integer init seed, so its "
                              "initialisation (the evaluation's floor) cannot be rebuilt")
    model_cfg = checkpoint_model_config(checkpoint)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        try:
            jepa = IAJEPA(model_cfg)
        except (ValueError, RuntimeError, AssertionError) as error:
            raise CheckpointError(f"{checkpoint / CONFIG_FILE}: the architecture cannot be "
                                  f"rebuilt ({error})".splitlines()[0]) from None
    return FrozenEncoder(getattr(jepa, weights)).to(device)


def write_initial_checkpoint(path: str | Path, model: str | ModelConfig = "tiny",
                             seed: int = 0) -> Path:
    """Write a checkpoint of a freshly initialised IA-JEPA (for tests and baselines)."""
    cfg = preset(model) if isinstance(model, str) else model
    torch.manual_seed(seed)
    jepa = IAJEPA(cfg)
    config = {"model": as_dict(cfg), "seed": seed}
    return save_checkpoint(path, 0, jepa.state_dict(), config, {"step": 0})
