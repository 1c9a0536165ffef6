"""The world model's training windows: simulated (and encoded) once, cached in a safetensors
file keyed by every key that changes them and the encoder weights' digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from agents.placements import (
    STATE_RENDER_SIZE,
    draw_placements,
    episode_windows,
    recorded_chunks,
    state_windows,
)
from envs.phyre_lite.splits import role_tasks
from ia_world.checkpoint import MODEL_FILE, load_encoder, resolve_checkpoint, write_weights
from ia_world.errors import DataError

if TYPE_CHECKING:
    from agents.world_model import WorldModelTrainConfig


CACHE_VERSION = 3  # bump when the windows a config gives change


def window_cache(config: WorldModelTrainConfig) -> Path | None:
    """The cache file of a config's windows: keyed by every key that changes them (for encoder
    features also the encoder's weights file digest), or None without `cache`."""
    if not config.cache:
        return None
    keys = {name: getattr(config, name) for name in (
        "features", "split", "fold", "episodes", "test_episodes", "windows", "frame_stride",
        "focus_share", "solved_share", "seed")}
    keys["version"] = CACHE_VERSION
    if config.features == "encoder":
        with open(resolve_checkpoint(config.encoder) / MODEL_FILE, "rb") as weights:
            keys["encoder"] = hashlib.file_digest(weights, "sha256").hexdigest()
        keys["tokens_per_window"] = config.world_model.tokens_per_window
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
    return Path(config.cache) / f"windows-{digest}.safetensors"


WINDOW_DATA = ("windows", "labels", "actions", "drawn_solved_share")


def read_window_cache(path: Path, episodes: int) -> dict[str, torch.Tensor]:
    """A window cache file, checked; DataError naming the file when it is corrupt."""
    try:
        data = load_file(path)
    except (OSError, SafetensorError) as error:
        raise DataError(f"{path}: corrupt window cache ({error}); delete it".splitlines()[0]) \
            from None
    if sorted(data) != sorted(WINDOW_DATA) or len(data["windows"]) != episodes \
            or len(data["labels"]) != episodes or data["actions"].shape != (episodes, 3):
        raise DataError(f"{path}: window cache does not hold {episodes} episodes' windows, "
                        "labels and actions; delete it")
    return data


def collect_windows(config: WorldModelTrainConfig) -> dict[str, torch.Tensor]:
    """Windows (E K P D), labels (E,), actions (E 3) of the train then the test episodes and the
    drawn solved shares (train, test); read from the cache when it holds them, else simulated
    (and encoded) and cached."""
    cache = window_cache(config)
    total = config.episodes + config.test_episodes
    if cache is not None and cache.is_file():
        return read_window_cache(cache, total)
    state = config.features == "state"
    encoder = None if state else load_encoder(config.encoder)
    size = STATE_RENDER_SIZE if state else encoder.grid.size
    roles = role_tasks(config.split, config.fold)
    train_tasks, test_tasks = roles["fit"], roles["test"]
    windows, labels, actions, shares = [], [], [], []
    for tasks, count, seed in ((train_tasks, config.episodes, config.seed),
                               (test_tasks, config.test_episodes, config.seed + 1)):
        placements, drawn_share = draw_placements(tasks, count, config, seed)
        shares.append(drawn_share)
        for chunk in recorded_chunks(placements, config, size):
            windows.append(state_windows(chunk, config.windows) if state else episode_windows(
                encoder, chunk, config.windows, config.world_model.tokens_per_window))
            labels += [e.solved for e in chunk]
            actions += [e.action for e in chunk]
    data = {"windows": torch.cat(windows).contiguous(), "labels": torch.tensor(labels),
            "actions": torch.tensor(np.stack(actions), dtype=torch.float32),
            "drawn_solved_share": torch.tensor(shares)}
    if cache is not None:
        write_weights(cache, data)  # the one safetensors writer (atomic)
    return data
