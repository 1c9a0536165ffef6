"""`ia-world solve agent=<name> split=<within|cross> fold=<k>`: AUCCESS of an agent on PHYRE-Lite.

Any agent with `propose(observation, n, puzzle) -> (n, 3) ranked actions` can be evaluated: its
actions are tried in order, invalid placements are skipped and not counted, and the first solving
valid attempt gives the puzzle's AUCCESS. Writes results.json, table.md and one mp4 per template
(the first solved attempt) under <out>/<agent>_<split>_fold<k>/.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.phyre_lite.auccess import mean_auccess, success_at
from envs.phyre_lite.scene import Puzzle, attempt, build_space, render
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, split_tasks
from envs.phyre_lite.templates import TEMPLATES, parse_task_id
from ia_world.atomic import atomic_write_json, atomic_write_text
from ia_world.checkpoint import read_json
from ia_world.config import (
    as_dict,
    check_choice,
    check_path,
    check_range,
    load_attr,
    to_dataclass,
    validate_tree,
)
from ia_world.data.video import write_video
from ia_world.errors import ConfigError

# agent name -> ("module:ConfigClass", "module:AgentClass"); the agent takes its validated config
AGENTS = {
    "random": ("agents.baselines:RandomConfig", "agents.baselines:RandomAgent"),
    "oracle": ("agents.baselines:OracleConfig", "agents.baselines:OracleAgent"),
    "latent": ("agents.latent_agent:LatentAgentConfig", "agents.latent_agent:LatentAgent"),
    "state_wm": ("agents.latent_agent:StateAgentConfig", "agents.latent_agent:LatentAgent"),
}


@dataclass
class SolveConfig:
    """`ia-world solve`: which agent, on which split and fold, with how many attempts."""

    split: str = "within"  # within-template or cross-template fold
    fold: int = 0  # 0..4
    puzzles: int = 0  # test puzzles per template (0 = all of the fold)
    attempts: int = 100  # valid attempts per puzzle (AUCCESS horizon)
    size: int = 64  # observation / video size in px
    out: str = "runs/solve"  # results go to <out>/<agent>_<split>_fold<k>/
    videos: bool = True  # mp4 of the first solved attempt per template
    templates: list[str] = field(default_factory=list)  # only these templates' test puzzles
    tasks: list[str] = field(default_factory=list)  # these task ids (template:variant) instead
    # the `agent` config group (configs/agent/<name>.yaml), validated on that agent's dataclass
    agent: Any = field(default_factory=lambda: {"name": "random"})

    def validate(self) -> None:
        """Range-check the keys; validate the agent's config on its own schema."""
        check_choice("split", self.split, SPLITS)
        check_range("fold", self.fold, 0, NUM_FOLDS - 1)
        check_range("puzzles", self.puzzles, 0, 10**6)
        check_range("attempts", self.attempts, 1, 10**6)
        check_range("size", self.size, 16, 512)
        check_path("out", self.out)
        for template in self.templates:
            check_choice("templates", template, sorted(TEMPLATES))
        for task in self.tasks:
            try:
                parse_task_id(task)
            except KeyError as error:
                raise ConfigError(f"tasks: {error.args[0]}") from None
        try:
            agent_config(self.agent)
        except ConfigError as error:
            raise ConfigError(f"agent.{error}") from None


def config_groups() -> dict[str, dict[str, type]]:
    """The `agent` group's schemas (registered with SolveConfig; see ia_world.config)."""
    return {"agent": {name: load_attr(schema) for name, (schema, _) in AGENTS.items()}}


def agent_config(agent: Any):
    """The validated dataclass of an `agent` config (a dict's `name` picks the schema)."""
    if not isinstance(agent, dict):
        return agent  # composed by Hydra on its schema: validated with the whole config
    check_choice("name", agent.get("name"), list(AGENTS))
    return to_dataclass(agent, load_attr(AGENTS[agent["name"]][0]))


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


def held_out_tasks(split: str, fold: int, per_template: int,
                   templates: list[str] | None = None) -> list[str]:
    """The fold's test task ids (of `templates` only, if given), the first `per_template` of
    each template (0 = all)."""
    _, test = split_tasks(split, fold)
    if templates:
        test = [task for task in test if task.split(":")[0] in templates]
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


def markdown_table(summary: dict[str, dict[str, float]], title: str, attempts: int) -> str:
    """The summary as a markdown table."""
    lines = [f"### {title}", "",
             f"| template | puzzles | AUCCESS | success@1 | solved@{attempts} | s/puzzle |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in summary.items():
        lines.append(f"| {name} | {row['puzzles']} | {row['auccess']:.3f} | "
                     f"{row['success@1']:.3f} | {row['solved']:.3f} | "
                     f"{row['seconds_per_puzzle']:.2f} |")
    return "\n".join(lines) + "\n"


def write_solution_video(path: Path, puzzle: Puzzle, action, size: int) -> None:
    """Re-simulate a solving action with recording and write it as mp4 (atomically)."""
    write_video(path, attempt(build_space(puzzle), action, record_size=size).frames, fps=10)


def solve_tasks(agent_cfg, tasks: list[str], attempts: int, size: int,
                desc: str) -> list[PuzzleResult]:
    """The agent built from `agent_cfg` on every task, in order."""
    agent = load_attr(AGENTS[agent_cfg.name][1])(agent_cfg)
    return [solve_puzzle(agent, parse_task_id(task), attempts, size)
            for task in tqdm(tasks, desc=desc)]


def rollout_ablation(agent_cfg, tasks: list[str], config: SolveConfig, name: str) -> dict:
    """For the latent agent: AUCCESS without rollouts and the world model's own diagnostics."""
    if not getattr(agent_cfg, "ablation", False) or not agent_cfg.rollout:
        return {}
    without = solve_tasks(replace(agent_cfg, rollout=False, ablation=False), tasks,
                          config.attempts, config.size, f"{name} without rollouts")
    metrics = Path(agent_cfg.world_model) / "metrics.json"
    return {"without_rollout": summarize(without, config.attempts),
            "world_model": read_json(metrics)["metrics"] if metrics.is_file()
            else None}


def solve(config: SolveConfig) -> dict[str, dict[str, float]]:
    """Evaluate the configured agent on the configured fold; print and save the table.

    The latent agent is also run with `rollout=false` (unless `agent.ablation=false`): both
    tables are printed and saved, with the world model's diagnostics, in results.json.
    """
    validate_tree(config)
    agent_cfg = agent_config(config.agent)
    name = f"{agent_cfg.name}_{config.split}_fold{config.fold}"
    out = Path(config.out) / name
    out.mkdir(parents=True, exist_ok=True)
    tasks = config.tasks or held_out_tasks(config.split, config.fold, config.puzzles,
                                           config.templates)
    results = solve_tasks(agent_cfg, tasks, config.attempts, config.size, name)
    summary = summarize(results, config.attempts)
    table = markdown_table(summary, f"{name} ({config.attempts} attempts)", config.attempts)
    ablation = rollout_ablation(agent_cfg, tasks, config, name)
    if ablation:
        table += "\n" + markdown_table(ablation["without_rollout"], f"{name} without rollouts "
                                        f"(window-0 probe, {config.attempts} attempts)",
                                        config.attempts)
    print(table)
    atomic_write_text(out / "table.md", table)
    atomic_write_json(out / "results.json", {"config": as_dict(replace(config, agent=agent_cfg)),
                                             "summary": summary, **ablation,
                                             "puzzles": [vars(r) for r in results]})
    if config.videos:
        (out / "videos").mkdir(exist_ok=True)
        first_solved = {r.template: r for r in reversed(results) if r.solving_action}
        for template, result in sorted(first_solved.items()):
            write_solution_video(out / "videos" / f"{template}.mp4", parse_task_id(result.task),
                                 result.solving_action, config.size)
    return summary
