"""Weighted mixtures of clip datasets (generated shards, CLEVRER, SSv2) for pretraining.

`data=mix data.weights={shards:1,clevrer:1,ssv2:0.5}` draws each item's source with those
weights (ia_world.data.sources builds the mixture); the draw is a fixed, seeded plan, so the
per-source counts are known (and logged) before training and every DataLoader worker agrees.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ia_world.errors import ConfigError

log = logging.getLogger(__name__)


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

