"""`ia-world solve agent=<name> split=<within|cross> fold=<k>`: AUCCESS of an agent on PHYRE-Lite.

Any agent with `propose(observation, n, puzzle) -> (n, 3) ranked actions` can be evaluated: its
actions are tried in order, invalid placements are skipped and not counted, and the first solving
valid attempt gives the puzzle's AUCCESS. Writes results.json, table.md and one mp4 per template
(the first solved attempt) under <out>/<agent>_<split>_fold<k>/.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from envs.phyre_lite.auccess import mean_auccess, success_at
from envs.phyre_lite.scene import Puzzle, attempt, build_space, render
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.config import check_range, to_dataclass
from ia_world.errors import ConfigError

# agent name -> "module:factory"; the factory takes the `agent` config group
AGENTS = {
    "random": "agents.baselines:make_random_agent",
    "oracle": "agents.baselines:make_oracle_agent",
    "latent": "agents.latent_agent:make_latent_agent",
}


@dataclass
class SolveConfig:
    """The `solve` command's config (configs/solve.yaml)."""

    split: str = "within"
    fold: int = 0
    puzzles: int = 0
    attempts: int = 100
    size: int = 64
    out: str = "runs/solve"
    videos: bool = True
    agent: dict[str, Any] = field(default_factory=lambda: {"name": "random"})

    def validate(self) -> None:
        """Range-check the keys and the agent name."""
        if self.split not in SPLITS:
            raise ConfigError(f"split={self.split!r} is not one of {SPLITS}")
        check_range("fold", self.fold, 0, NUM_FOLDS - 1)
        check_range("puzzles", self.puzzles, 0, None)
        check_range("attempts", self.attempts, 1, None)
        check_range("size", self.size, 16, 512)
        if self.agent.get("name") not in AGENTS:
            raise ConfigError(f"agent={self.agent.get('name')!r} is not one of {sorted(AGENTS)}")


@dataclass
class PuzzleResult:
    """One puzzle's evaluation: 1-based first solving attempt (None = unsolved) and costs."""

    task: str
    template: str
    first_success: int | None
    valid_attempts: int
    invalid_attempts: int
    seconds: float
    solving_action: list[float] | None = None


def make_agent(agent_cfg) -> Any:
    """Build the agent named in the `agent` config group."""
    module_name, factory = AGENTS[agent_cfg["name"]].split(":")
    return getattr(importlib.import_module(module_name), factory)(agent_cfg)


def solve_puzzle(agent, puzzle: Puzzle, attempts: int, size: int) -> PuzzleResult:
    """Try the agent's ranked actions on one puzzle until solved or `attempts` valid tries."""
    start = time.perf_counter()
    space = build_space(puzzle)
    actions = np.asarray(agent.propose(render(space, size), attempts, puzzle), np.float64)
    valid = invalid = 0
    first, solving = None, None
    for action in actions.reshape(-1, 3):
        outcome = attempt(space, action)
        if not outcome.valid:
            invalid += 1
            continue
        valid += 1
        if outcome.solved:
            first, solving = valid, action.tolist()
            break
        if valid >= attempts:
            break
    return PuzzleResult(puzzle.task_id, puzzle.template, first, valid, invalid,
                        time.perf_counter() - start, solving)


def held_out_tasks(split: str, fold: int, per_template: int) -> list[str]:
    """The fold's test task ids, the first `per_template` of each template (0 = all)."""
    _, test = split_tasks(split, fold)
    if per_template == 0:
        return test
    counts: dict[str, int] = defaultdict(int)
    chosen = []
    for task in test:
        template = task.split(":")[0]
        if counts[template] < per_template:
            counts[template] += 1
            chosen.append(task)
    return chosen


def summarize(results: list[PuzzleResult], attempts: int) -> dict[str, dict[str, float]]:
    """Per-template and overall AUCCESS, success@1, solved share and seconds per puzzle."""
    groups: dict[str, list[PuzzleResult]] = defaultdict(list)
    for result in results:
        groups[result.template].append(result)
    groups = {**dict(sorted(groups.items())), "overall": results}
    return {name: {"puzzles": len(rs),
                   "auccess": mean_auccess([r.first_success for r in rs], attempts),
                   "success@1": success_at([r.first_success for r in rs], 1),
                   "solved": success_at([r.first_success for r in rs], attempts),
                   "seconds_per_puzzle": float(np.mean([r.seconds for r in rs]))}
            for name, rs in groups.items()}


def markdown_table(summary: dict[str, dict[str, float]], title: str) -> str:
    """The summary as a markdown table."""
    lines = [f"### {title}", "",
             "| template | puzzles | AUCCESS | success@1 | solved@100 | s/puzzle |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in summary.items():
        lines.append(f"| {name} | {row['puzzles']} | {row['auccess']:.3f} | "
                     f"{row['success@1']:.3f} | {row['solved']:.3f} | "
                     f"{row['seconds_per_puzzle']:.2f} |")
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_video(path: Path, puzzle: Puzzle, action, size: int) -> None:
    """Re-simulate a solving action with recording and write it as mp4 (atomically)."""
    frames = attempt(build_space(puzzle), action, record_size=size).frames
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    iio.imwrite(tmp, frames, fps=10, codec="libx264", macro_block_size=1)
    os.replace(tmp, path)


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate the configured agent on the configured fold; print and save the table."""
    config = to_dataclass(cfg, SolveConfig)
    agent = make_agent(config.agent)
    name = f"{config.agent['name']}_{config.split}_fold{config.fold}"
    out = Path(config.out) / name
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for task in tqdm(held_out_tasks(config.split, config.fold, config.puzzles), desc=name):
        results.append(solve_puzzle(agent, parse_task_id(task), config.attempts, config.size))
    summary = summarize(results, config.attempts)
    table = markdown_table(summary, f"{name} ({config.attempts} attempts)")
    print(table)
    write_text(out / "table.md", table)
    write_text(out / "results.json", json.dumps(
        {"config": {k: v for k, v in vars(config).items()}, "summary": summary,
         "puzzles": [vars(r) for r in results]}, indent=1))
    if config.videos:
        (out / "videos").mkdir(exist_ok=True)
        first_solved = {r.template: r for r in reversed(results) if r.solving_action}
        for template, result in sorted(first_solved.items()):
            write_video(out / "videos" / f"{template}.mp4", parse_task_id(result.task),
                        result.solving_action, config.size)
    return summary
