"""Weighted mixtures of clip datasets (generated shards, CLEVRER, SSv2) for pretraining.

`data=mix data.weights={shards:1,clevrer:1,ssv2:0.5}` draws each item's source with those
weights; the draw is a fixed, seeded plan, so the per-source counts are known (and logged) before
training and every DataLoader worker agrees on them.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ia_world.data.clevrer import clevrer_clips
from ia_world.data.clips import ClipDataset
from ia_world.data.shards import EpisodeStore
from ia_world.data.ssv2 import ssv2_clips
from ia_world.errors import ConfigError

log = logging.getLogger(__name__)

SOURCES = ("shards", "clevrer", "ssv2")


def source_clips(source: str, path: str, frames: int, size: int, frame_stride: int = 1,
                 clips_per_episode: int = 1, fps: float | None = None, seed: int = 0,
                 skip_bad: bool = False) -> Dataset:
    """The clip dataset of one source: shards (frame_stride), CLEVRER or SSv2 (fps) train split."""
    if source == "shards":
        store = EpisodeStore(path)
        store.check_clips((frames - 1) * frame_stride + 1, size)  # here, not in a worker
        return ClipDataset(store, frames, frame_stride, clips_per_episode)
    if source == "clevrer":
        return clevrer_clips(path, "train", frames, size, fps, seed=seed, skip_bad=skip_bad)
    if source == "ssv2":
        return ssv2_clips(path, "train", frames, size, fps, seed=seed, skip_bad=skip_bad)
    raise ConfigError(f"data source {source!r} is not one of {list(SOURCES)}")


class MixedClips(Dataset):
    """Item i = item j of source s, (s, j) drawn once from `weights` with `seed`; adds "source"."""

    def __init__(self, sources: dict[str, Dataset], weights: dict[str, float],
                 length: int | None = None, seed: int = 0):
        unknown = sorted(name for name, w in weights.items() if w > 0 and name not in sources)
        if unknown or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError(f"data.weights={weights}: need non-negative weights, not all 0, "
                              f"for sources {sorted(sources)} (unknown: {unknown})")
        self.names = [name for name in sources if weights.get(name, 0) > 0]
        self.sources = [sources[name] for name in self.names]
        probabilities = np.array([weights[name] for name in self.names], np.float64)
        probabilities /= probabilities.sum()
        length = length or sum(len(source) for source in self.sources)
        rng = np.random.default_rng(seed)
        self.source_of = rng.choice(len(self.names), size=length, p=probabilities)
        self.item_of = [int(rng.integers(len(self.sources[s]))) for s in self.source_of]
        log.info("mixture sampling counts: %s", self.counts())

    def counts(self) -> dict[str, int]:
        """How many items of the mixture each source supplies."""
        drawn = Counter(int(s) for s in self.source_of)
        return {name: drawn[s] for s, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.source_of)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """The planned source's clip dict, plus "source" (its name)."""
        s = int(self.source_of[i])
        return {**self.sources[s][self.item_of[i]], "source": self.names[s]}


def mixed_clips(paths: dict[str, str], weights: dict[str, float], frames: int, size: int,
                frame_stride: int = 1, clips_per_episode: int = 1, fps: float | None = None,
                seed: int = 0, skip_bad: bool = False, length: int | None = None) -> MixedClips:
    """The mixture of the sources named in `paths` (source -> dataset root) with `weights`."""
    missing = [name for name, weight in weights.items() if weight > 0 and not paths.get(name)]
    if missing:
        raise ConfigError(f"data.paths.{missing[0]} is required: its weight is above 0")
    sources = {name: source_clips(name, path, frames, size, frame_stride, clips_per_episode, fps,
                                  seed, skip_bad)
               for name, path in paths.items() if weights.get(name, 0) > 0}
    return MixedClips(sources, weights, length, seed)
