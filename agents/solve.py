"""`ia-world solve agent=<name> split=<within|cross> fold=<k>`: AUCCESS of an agent on PHYRE-Lite.

Any agent with `propose(observation, n, puzzle) -> (n, 3) ranked actions` can be evaluated: its
actions are tried in order, invalid placements are skipped and not counted, and the first solving
valid attempt gives the puzzle's AUCCESS. Writes results.json, table.md and one mp4 per template
(the first solved attempt) under <out>/<agent>_<split>_fold<k>/.

Statistics (agents/planner_stats.py): every AUCCESS has a bootstrap CI over puzzles; the agent
can be run for several `seeds` and (latent / state_wm) several `world_models`, reported per run
and as a mean with a t-interval across runs; the random floor runs on the same puzzles for each
of `floor_seeds`, and agent - floor (and, for the latent agents, with - without rollouts) is a
paired bootstrap over puzzles and a t-interval across runs.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.planner_stats import auccess_ci, planner_statistics, puzzle_auccess, statistics_table
from envs.phyre_lite.auccess import success_at
from envs.phyre_lite.scene import Puzzle, attempt, build_space, render
from envs.phyre_lite.splits import NUM_FOLDS, ROLES, SPLITS, role_tasks
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
from ia_world.eval.stats import BOOTSTRAP_SAMPLES
from ia_world.runlock import check_out_dir

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
    # val: the fold's puzzles for choosing planner levers; test: its held-out puzzles (claims)
    role: str = "test"
    puzzles: int = 0  # puzzles of the role per template (0 = all of the fold)
    attempts: int = 100  # valid attempts per puzzle (AUCCESS horizon)
    size: int = 64  # observation / video size in px
    out: str = "runs/solve"  # results go to <out>/<agent>_<split>_fold<k>/
    videos: bool = True  # mp4 of the first solved attempt per template
    templates: list[str] = field(default_factory=list)  # only these templates' test puzzles
    tasks: list[str] = field(default_factory=list)  # these task ids (template:variant) instead
    seeds: list[int] = field(default_factory=list)  # one agent run per seed ([] = agent.seed)
    # latent / state_wm: one run per world-model dir, e.g. of world-model seeds ([] = agent's)
    world_models: list[str] = field(default_factory=list)
    # the random floor on the same puzzles, one run per seed ([] = none)
    floor_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    bootstrap: int = BOOTSTRAP_SAMPLES  # resamples of the (seeded) bootstrap over puzzles
    # the `agent` config group (configs/agent/<name>.yaml), validated on that agent's dataclass
    agent: Any = field(default_factory=lambda: {"name": "random"})

    def validate(self) -> None:
        """Range-check the keys; validate the agent's config on its own schema."""
        check_choice("split", self.split, SPLITS)
        check_range("fold", self.fold, 0, NUM_FOLDS - 1)
        check_choice("role", self.role, ROLES)
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
        check_range("bootstrap", self.bootstrap, 10, 10**6)
        try:
            agent = agent_config(self.agent)
        except ConfigError as error:
            raise ConfigError(f"agent.{error}") from None
        if self.world_models and not hasattr(agent, "world_model"):
            raise ConfigError(f"world_models: agent={agent.name} has no world model")
        for path in self.world_models:
            check_path("world_models", path)


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
                   templates: list[str] | None = None, role: str = "test") -> list[str]:
    """The fold's task ids of `role` (val or test; of `templates` only, if given), the first
    `per_template` of each template (0 = all)."""
    test = role_tasks(split, fold)[role]
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


def summarize(results: list[PuzzleResult], attempts: int,
              samples: int = BOOTSTRAP_SAMPLES) -> dict[str, dict]:
    """Per-template and overall AUCCESS (with its bootstrap CI over puzzles), success@1, solved
    share and seconds per puzzle."""
    groups: dict[str, list[PuzzleResult]] = defaultdict(list)
    for result in results:
        groups[result.template].append(result)
    groups = {**dict(sorted(groups.items())), "overall": results}
    values = {name: puzzle_auccess([r.first_success for r in rs], attempts)
              for name, rs in groups.items()}
    return {name: {"puzzles": len(rs), "auccess": float(values[name].mean()),
                   "auccess_ci": auccess_ci(values[name], samples),
                   "success@1": success_at([r.first_success for r in rs], 1),
                   "solved": success_at([r.first_success for r in rs], attempts),
                   "seconds_per_puzzle": float(np.mean([r.seconds for r in rs]))}
            for name, rs in groups.items()}


def markdown_table(summary: dict[str, dict[str, float]], title: str, attempts: int) -> str:
    """The summary as a markdown table."""
    lines = [f"### {title}", "",
             f"| template | puzzles | AUCCESS | 95% CI | success@1 | solved@{attempts} "
             "| s/puzzle |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in summary.items():
        low, high = row["auccess_ci"]
        lines.append(f"| {name} | {row['puzzles']} | {row['auccess']:.3f} | "
                     f"[{low:.3f}, {high:.3f}] | "
                     f"{row['success@1']:.3f} | {row['solved']:.3f} | "
                     f"{row['seconds_per_puzzle']:.2f} |")
    return "\n".join(lines) + "\n"


def write_solution_video(path: Path, puzzle: Puzzle, action, size: int, root: Path) -> None:
    """Re-simulate a solving action with recording and write it as mp4 (atomically, refused
    outside `root`)."""
    write_video(path, attempt(build_space(puzzle), action, record_size=size).frames, fps=10,
                root=root)


def solve_tasks(agent_cfg, tasks: list[str], attempts: int, size: int,
                desc: str) -> list[PuzzleResult]:
    """The agent built from `agent_cfg` on every task, in order."""
    agent = load_attr(AGENTS[agent_cfg.name][1])(agent_cfg)
    return [solve_puzzle(agent, parse_task_id(task), attempts, size)
            for task in tqdm(tasks, desc=desc)]


def agent_runs(agent_cfg, config: SolveConfig) -> list[list]:
    """The agent's configs (W, S): one per world model (`world_models`) and seed (`seeds`)."""
    seeds = config.seeds or [agent_cfg.seed]
    return [[replace(agent_cfg, seed=seed, **({"world_model": path} if path else {}))
             for seed in seeds] for path in config.world_models or [None]]


def run_label(cfg) -> str:
    """A run's label: its seed and, for the latent agents, its world model."""
    path = getattr(cfg, "world_model", None)
    return f"seed={cfg.seed}" + (f" world_model={path}" if path else "")


def has_ablation(agent_cfg) -> bool:
    """Whether solve also runs this (latent) agent without rollouts."""
    return bool(getattr(agent_cfg, "ablation", False) and agent_cfg.rollout)


def solve(config: SolveConfig) -> dict[str, dict[str, float]]:
    """Evaluate the configured agent on the configured fold; print and save the tables.

    Returns the first run's summary. The latent agent is also run with `rollout=false` (unless
    `agent.ablation=false`): both tables are printed and saved, with the world model's
    diagnostics and every run's statistics, in results.json.
    """
    validate_tree(config)
    check_out_dir(config.out)  # before any work
    agent_cfg = agent_config(config.agent)
    role = "" if config.role == "test" else f"_{config.role}"
    name = f"{agent_cfg.name}_{config.split}_fold{config.fold}{role}"
    out = Path(config.out) / name
    out.mkdir(parents=True, exist_ok=True)
    tasks = config.tasks or held_out_tasks(config.split, config.fold, config.puzzles,
                                           config.templates, config.role)
    done: dict[str, list[PuzzleResult]] = {}  # identical runs (the random agent's) run once

    def run(cfg, desc: str) -> list[PuzzleResult]:
        if repr(cfg) not in done:
            done[repr(cfg)] = solve_tasks(cfg, tasks, config.attempts, config.size, desc)
        return done[repr(cfg)]

    def per_puzzle(results: list[PuzzleResult]) -> np.ndarray:
        return puzzle_auccess([r.first_success for r in results], config.attempts)

    runs = agent_runs(agent_cfg, config)
    labels = [run_label(cfg) for row in runs for cfg in row]
    results = [[run(cfg, f"{name} {run_label(cfg)}") for cfg in row] for row in runs]
    floor = [run(to_dataclass({"name": "random", "seed": seed}, load_attr(AGENTS["random"][0])),
                 f"random floor seed={seed}") for seed in config.floor_seeds]
    ablation = has_ablation(agent_cfg)
    without = [[run(replace(cfg, rollout=False, ablation=False), f"{name} {run_label(cfg)} "
                    "without rollouts") for cfg in row] for row in runs] if ablation else None
    statistics = planner_statistics(
        np.array([[per_puzzle(r) for r in row] for row in results]), config.bootstrap,
        np.array([per_puzzle(r) for r in floor]).reshape(len(floor), len(tasks)),
        np.array([[per_puzzle(r) for r in row] for row in without]) if without else None)
    summary = summarize(results[0][0], config.attempts, config.bootstrap)
    table = markdown_table(summary, f"{name} {labels[0]} ({config.attempts} attempts)",
                           config.attempts)
    extra: dict[str, Any] = {}
    if without:
        extra["without_rollout"] = summarize(without[0][0], config.attempts, config.bootstrap)
        metrics = Path(runs[0][0].world_model) / "metrics.json"
        extra["world_model"] = read_json(metrics)["metrics"] if metrics.is_file() else None
        table += "\n" + markdown_table(extra["without_rollout"], f"{name} {labels[0]} without "
                                        f"rollouts (window-0 probe, {config.attempts} attempts)",
                                        config.attempts)
    table += "\n" + statistics_table(statistics, name, labels)
    print(table)
    atomic_write_text(out / "table.md", table)
    run_rows = [{"label": label, "first_success": [r.first_success for r in rs]}
                for label, rs in zip(labels, [rs for row in results for rs in row])]
    atomic_write_json(out / "results.json", {"config": as_dict(replace(config, agent=agent_cfg)),
                                             "summary": summary, **extra,
                                             "statistics": statistics, "runs": run_rows,
                                             "puzzles": [vars(r) for r in results[0][0]]})
    if config.videos:
        (out / "videos").mkdir(exist_ok=True)
        first_solved = {r.template: r for r in reversed(results[0][0]) if r.solving_action}
        for template, result in sorted(first_solved.items()):
            write_solution_video(out / "videos" / f"{template}.mp4", parse_task_id(result.task),
                                 result.solving_action, config.size, out)
    return summary
