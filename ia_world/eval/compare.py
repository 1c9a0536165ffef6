"""`experiment=compare`: pretrain every masking strategy for the same budget and seeds, evaluate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ia_world.cli import run_command
from ia_world.masking import STRATEGIES


@dataclass
class CompareConfig:
    """Strategies x seeds to pretrain into root/<strategy>-seed<seed>, with shared overrides."""

    root: str = "runs/compare"
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain: dict[str, Any] = field(default_factory=dict)  # key=value for every pretrain
    evaluate: dict[str, Any] = field(default_factory=dict)  # key=value for every evaluate


def as_overrides(settings: dict[str, Any], prefix: str = "") -> list[str]:
    """Nested {key: value} -> Hydra overrides ["key.sub=value", ...]."""
    return [override for key, value in settings.items()
            for override in (as_overrides(value, f"{prefix}{key}.") if isinstance(value, dict)
                             else [f"{prefix}{key}={value}"])]


def run_compare(cfg: CompareConfig, encoder_weights: str = "target") -> list[str]:
    """Pretrain (resuming finished or partial runs) and evaluate each run; returns the run dirs."""
    runs = [(s, seed, str(Path(cfg.root) / f"{s}-seed{seed}"))
            for s in cfg.strategies for seed in cfg.seeds]
    for strategy, seed, out in tqdm(runs, desc="compare"):
        run_command("pretrain", [*as_overrides(cfg.pretrain), f"masking={strategy}",
                                 f"seed={seed}", f"out={out}"])
        run_command("evaluate", [f"ckpt={out}", f"encoder_weights={encoder_weights}",
                                 *as_overrides(cfg.evaluate)])
    return [out for _, _, out in runs]
