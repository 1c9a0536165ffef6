"""`ia-world compare`: pretrain every masking strategy for the same budget and seeds, evaluate
each run on the same splits, then write the report (ia_world.report)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from ia_world.checkpoint import ENCODER_WEIGHTS
from ia_world.config import check_choice, check_path, validate_tree
from ia_world.errors import ConfigError, DataError
from ia_world.eval.evaluate import EvalConfig, evaluate
from ia_world.masking import STRATEGIES
from ia_world.report import ReportConfig, read_eval, report
from ia_world.runlock import check_out_dir
from ia_world.training import PretrainConfig, pretrain

EACH_RUN = "(each run)"  # evaluate.ckpt / pretrain.out: set per strategy and seed
EVAL_CACHE = "eval-cache"  # under root: the splits and questions every run's evaluation shares


@dataclass
class CompareConfig:
    """Strategies x seeds pretrained into root/<strategy>-seed<seed> with one shared budget."""

    root: str = "runs/compare"  # run directories go here
    out: str = "runs/compare/report"  # report.md and plots
    # masking strategies compared
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one run per strategy and seed
    baseline: str = "random_tube"  # gains and differences are relative to this strategy
    encoder_weights: str = "trained"  # evaluate and report: trained (the run's) | target | encoder
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(out=EACH_RUN))
    evaluate: EvalConfig = field(default_factory=lambda: EvalConfig(ckpt=EACH_RUN))

    def validate(self) -> None:
        """Raise ConfigError on unknown strategies, no seeds or an empty root."""
        check_path("root", self.root)
        check_path("out", self.out)
        if not self.strategies or not self.seeds:
            raise ConfigError("strategies and seeds must each name at least one")
        for strategy in self.strategies:
            check_choice("strategies", strategy, STRATEGIES)
        check_choice("encoder_weights", self.encoder_weights, ENCODER_WEIGHTS)


def run_dirs(cfg: CompareConfig) -> list[tuple[str, int, Path]]:
    """(strategy, seed, run directory) of every run of the comparison."""
    return [(s, seed, Path(cfg.root) / f"{s}-seed{seed}")
            for s in cfg.strategies for seed in cfg.seeds]


def compare(cfg: CompareConfig) -> Path:
    """Pretrain (resuming finished or partial runs), evaluate once, report; returns report.md."""
    validate_tree(cfg)
    check_out_dir(cfg.out)  # before any work
    runs = run_dirs(cfg)
    for strategy, seed, out in tqdm(runs, desc="compare"):
        masking = replace(cfg.pretrain.masking, strategy=strategy)
        pretrain(replace(cfg.pretrain, masking=masking, seed=seed, out=str(out)))
        try:
            read_eval(out, cfg.encoder_weights)  # evaluated already: keep it
        except DataError:
            evaluate(replace(cfg.evaluate, ckpt=str(out), encoder_weights=cfg.encoder_weights,
                             cache=cfg.evaluate.cache or str(Path(cfg.root) / EVAL_CACHE)))
    return report(ReportConfig(runs=[str(out) for _, _, out in runs], out=cfg.out,
                               baseline=cfg.baseline, encoder_weights=cfg.encoder_weights))
