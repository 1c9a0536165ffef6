"""Planner statistics of `ia-world solve`: AUCCESS with intervals that say what they cover.

- Over puzzles (one run): a seeded percentile bootstrap of the mean AUCCESS (`auccess_ci`); the
  difference of two agents on the same puzzles resamples the puzzles once for both
  (`paired_difference`), so an agent against itself gives exactly 0 with a zero-width interval.
- Over runs (agent seeds, world-model seeds, the random floor's seeds): the mean of the runs'
  AUCCESS with a Student-t interval (`across_runs`); a bootstrap over 3-5 numbers would be about
  [min, max].
Per-puzzle AUCCESS arrays are (W, S, P): world models x agent seeds x puzzles (the same puzzles in
the same order in every run). The unit across runs is the world model when there are several
(each averaged over its agent seeds), else the agent seed.
"""

from __future__ import annotations

import numpy as np

from envs.phyre_lite.auccess import auccess
from ia_world.eval.stats import BOOTSTRAP_SAMPLES, bootstrap_ci, seed_summary


def puzzle_auccess(first_successes: list[int | None], attempts: int) -> np.ndarray:
    """Per-puzzle AUCCESS (P,) of first successful attempts (None = unsolved)."""
    return np.array([auccess(first, attempts) for first in first_successes], np.float64)


def auccess_ci(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[float]:
    """95% percentile bootstrap CI over puzzles of the mean of per-puzzle values (P,)."""
    values = np.asarray(values, np.float64)
    return bootstrap_ci(lambda index: float(values[index].mean()), len(values), seed, samples)


def paired_difference(a: np.ndarray, b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> dict:
    """mean(a - b) over the same puzzles (P,) and its 95% paired bootstrap CI (one resample of
    the puzzles serves both agents)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_difference: {a.shape} and {b.shape} are not the same puzzles")
    return {"difference": float((a - b).mean()), "ci": auccess_ci(a - b, samples, seed)}


def across_runs(values) -> dict:
    """The runs' values, their mean and its 95% t-interval (`seed_summary`: runs with a
    non-finite value are counted in `nan`, never dropped silently)."""
    return {"values": np.asarray(values, np.float64).tolist(), **seed_summary(values)}


def run_units(per_puzzle: np.ndarray) -> np.ndarray:
    """(W, S, P) -> (U, P): one row per world model (mean over seeds) when W > 1, else per seed."""
    return per_puzzle.mean(1) if len(per_puzzle) > 1 else per_puzzle[0]


def compare(a: np.ndarray, b: np.ndarray, samples: int) -> dict:
    """a - b for units (U, P) against (U, P) or one reference row (1, P): the pooled paired
    bootstrap over puzzles, each unit's, and the t-interval of the units' differences."""
    b = np.broadcast_to(b, a.shape)
    per_unit = [paired_difference(x, y, samples) for x, y in zip(a, b)]
    return {**paired_difference(a.mean(0), b.mean(0), samples), "per_unit": per_unit,
            "across": across_runs([d["difference"] for d in per_unit])}


def planner_statistics(agent: np.ndarray, samples: int, floor: np.ndarray | None = None,
                       without_rollout: np.ndarray | None = None) -> dict:
    """The agent's AUCCESS (W, S, P) per run and over runs; against the random floor (F, P) of
    F seeds and against the same agent without rollouts (W, S, P), when given."""
    units = run_units(agent)
    stats = {"unit": "world_model" if len(agent) > 1 else "seed", "puzzles": agent.shape[-1],
             "runs": [{"auccess": float(run.mean()), "ci": auccess_ci(run, samples)}
                      for run in agent.reshape(-1, agent.shape[-1])],
             "auccess": {"mean": float(agent.mean()), "ci": auccess_ci(units.mean(0), samples),
                         "across": across_runs(units.mean(1))}}
    if floor is not None and len(floor):
        stats["floor"] = {"mean": float(floor.mean()), "ci": auccess_ci(floor.mean(0), samples),
                          "across": across_runs(floor.mean(1))}
        stats["agent - floor"] = compare(units, floor.mean(0)[None], samples)
    if without_rollout is not None:
        stats["rollout - window-0"] = compare(units, run_units(without_rollout), samples)
    return stats


def interval(ci: list[float]) -> str:
    """[low, high] with 3 decimals."""
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


LABELS = {"floor": "random floor AUCCESS", "agent - floor": "agent - floor",
          "rollout - window-0": "with - without rollouts"}


def statistics_table(stats: dict, name: str, runs: list[str]) -> str:
    """The statistics as a markdown table: mean, CI over puzzles, CI over runs; then each run
    (labelled by `runs`) with its CI over puzzles."""
    unit = stats["unit"].replace("_", "-")
    lines = [f"### {name}: AUCCESS with 95% intervals", "",
             f"{stats['puzzles']} puzzles; over puzzles: percentile bootstrap (paired for a "
             f"difference); over runs: t-interval across {unit}s (floor: across its seeds)", "",
             "| quantity | mean | CI over puzzles | CI over runs (n) |", "|---|---:|---:|---:|"]
    rows = [("AUCCESS", stats["auccess"])]
    rows += [(LABELS[key], stats[key]) for key in LABELS if key in stats]
    for label, row in rows:
        across = row["across"]
        mean = row.get("mean", row.get("difference"))
        lines.append(f"| {label} | {mean:.3f} | {interval(row['ci'])} | "
                     f"{interval(across['ci'])} ({across['n']}) |")
    for label, run in zip(runs, stats["runs"]):
        lines.append(f"| run {label} | {run['auccess']:.3f} | {interval(run['ci'])} | |")
    return "\n".join(lines) + "\n"
