"""`ia-world demo`: the whole pipeline end to end, one self-contained HTML report at the end.

Stages (each resumable: complete outputs are kept and skipped on a re-run):
generate pretraining / probe / held-out Billiards data (three base seeds) -> pretrain every
strategy with the same budget -> evaluate each (energy R^2, entropy, mask hit-rate/selectivity,
causal QA) -> PHYRE-Lite puzzles with the random agent (and the latent planner when installed)
-> mask-overlay videos -> out/report.html + out/summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import matplotlib
import numpy as np
import torch
from omegaconf import DictConfig

from ia_world import html_report
from ia_world.cli import run_command
from ia_world.config import CONFIG_DIR, as_dict, check_range, to_dataclass
from ia_world.data.episode import Episode
from ia_world.data.generator import EnvConfig, GenerateConfig, generate
from ia_world.data.shards import EpisodeStore, atomic_write_json
from ia_world.errors import ConfigError, DataError
from ia_world.eval.features import CONTROLS
from ia_world.eval.spectrum import gain_pct
from ia_world.masking import STRATEGIES
from ia_world.models.presets import preset as model_preset
from ia_world.report import read_eval, scalar_metrics
from ia_world.viz import gif_bytes, write_mask_video

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the file-only backend)

SOLVE_SPLIT, SOLVE_FOLD = "within", 0
COMPARED_METRICS = ("R2 total_energy", "R2 mean_speed", "R2 object_velocity",
                    "R2 total_energy (fixed count)", "R2 mean_speed (fixed count)",
                    "QA descriptive per-option", "QA predictive per-option", "RankMe",
                    "Gaussian entropy", "hit@0.05", "hit@0.1", "hit@0.4", "selectivity",
                    "QA causal per-question")


@dataclass
class Budget:
    """How big every stage is (one entry of configs/demo.yaml `presets`)."""

    episodes: int = 96
    probe_episodes: int = 48
    heldout_episodes: int = 48
    frames: int = 32
    model: str = "tiny"
    steps: int = 150
    batch_size: int = 8
    folds: int = 4
    qa_epochs: int = 10
    fixed_train_episodes: int = 640  # fixed-count splits: QA and probes counting cannot explain
    fixed_heldout_episodes: int = 256
    qa_min_questions: int = 50
    puzzles: int = 1
    attempts: int = 20
    planner_episodes: int = 120  # world model + goal probe: random placements on train puzzles
    planner_steps: int = 150  # world model and goal probe training steps
    planner_population: int = 64  # CEM candidates per iteration
    planner_iterations: int = 3

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        for key in ("episodes", "steps", "batch_size", "qa_epochs", "attempts",
                    "planner_episodes", "planner_steps", "planner_iterations"):
            check_range(key, getattr(self, key), 1)
        check_range("folds", self.folds, 2)
        check_range("probe_episodes", self.probe_episodes, 2 * self.folds)
        check_range("heldout_episodes", self.heldout_episodes, 2)
        check_range("puzzles", self.puzzles, 0)
        check_range("planner_population", self.planner_population, 2)


@dataclass
class DemoConfig:
    """configs/demo.yaml."""

    env: EnvConfig = field(default_factory=EnvConfig)
    out: str = "runs/demo"
    preset: str = "cpu"
    seed: int = 0
    probe_seed: int = 1001
    heldout_seed: int = 2002
    strategies: list[str] = field(default_factory=lambda: ["interaction", "random_tube"])
    overlay_strategies: list[str] = field(default_factory=lambda: ["random_tube", "interaction"])
    workers: int = 1
    videos: int = 3
    device: str = "auto"
    presets: dict[str, Budget] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ConfigError on an unknown preset or strategy, equal seeds, or bad budgets."""
        if self.preset not in self.presets:
            raise ConfigError(f"preset={self.preset!r} is not one of {sorted(self.presets)}")
        for strategy in [*self.strategies, *self.overlay_strategies]:
            if strategy not in STRATEGIES:
                raise ConfigError(f"strategy {strategy!r} (strategies / overlay_strategies) is "
                                  f"unknown; choose from {', '.join(STRATEGIES)}")
        if not self.strategies:
            raise ConfigError("strategies must name at least one masking strategy")
        if len({self.seed, self.probe_seed, self.heldout_seed}) < 3:
            raise ConfigError("seed, probe_seed and heldout_seed must all differ")
        check_range("videos", self.videos, 0)
        self.presets[self.preset].validate()

    @property
    def budget(self) -> Budget:
        """The budgets of the chosen preset."""
        return self.presets[self.preset]


# ---- stages ----------------------------------------------------------------------------------
def generate_split(demo: DemoConfig, name: str, episodes: int, seed: int) -> dict:
    """Generate (or finish) one dataset out/data/<name>; returns the generator's summary."""
    cfg = GenerateConfig(env=demo.env, out=str(Path(demo.out) / "data" / name),
                         episodes=episodes, frames=demo.budget.frames, size=64,
                         shard_size=min(episodes, 128), seed=seed, workers=demo.workers)
    cfg.validate()
    return generate(cfg)


def pretrain(demo: DemoConfig, strategy: str) -> Path:
    """Pretrain (or resume) one strategy's encoder on out/data/pretrain; returns its run dir."""
    budget, run_dir = demo.budget, Path(demo.out) / "runs" / strategy
    run_command("pretrain", [
        f"data={Path(demo.out) / 'data' / 'pretrain'}", f"masking={strategy}",
        f"model={budget.model}", f"env={demo.env.name}", f"out={run_dir}", f"seed={demo.seed}",
        f"steps={budget.steps}", f"batch_size={budget.batch_size}", "data.num_workers=0",
        f"warmup_steps={budget.steps // 10}", f"log_every={max(budget.steps // 20, 1)}",
        f"checkpoint_every={max(budget.steps // 4, 1)}", f"device={demo.device}"])
    return run_dir


def evaluate(demo: DemoConfig, run_dir: Path) -> dict:
    """The run's evaluation (computed once, then read back from its metrics.json)."""
    try:
        result = read_eval(run_dir)
        if "metrics" in result:  # evaluated with the controls
            return result
    except DataError:
        pass
    budget, data = demo.budget, Path(demo.out) / "data"
    device = "cuda" if demo.device != "cpu" and torch.cuda.is_available() else "cpu"
    return run_command("evaluate", [
        f"ckpt={run_dir}", f"env={demo.env.name}", f"train_data={data / 'probe'}",
        f"heldout_data={data / 'heldout'}", f"train_episodes={budget.probe_episodes}",
        f"heldout_episodes={budget.heldout_episodes}", f"train_seed={demo.probe_seed}",
        f"heldout_seed={demo.heldout_seed}", f"folds={budget.folds}",
        f"qa.epochs={budget.qa_epochs}", f"fixed.train_episodes={budget.fixed_train_episodes}",
        f"fixed.heldout_episodes={budget.fixed_heldout_episodes}",
        f"qa.min_questions={budget.qa_min_questions}", f"device={device}"])


def latent_agent_available() -> bool:
    """Whether the latent planner (configs/agent/latent.yaml) is installed."""
    return (CONFIG_DIR / "agent" / "latent.yaml").is_file()


def train_world_model(demo: DemoConfig, encoder_run: Path) -> Path:
    """Train the latent planner's world model + goal probe on the fold's train puzzles, once."""
    out = Path(demo.out) / "world_model"
    if not (out / "metrics.json").is_file():
        budget = demo.budget
        run_command("world_model", [
            f"encoder={encoder_run}", f"split={SOLVE_SPLIT}", f"fold={SOLVE_FOLD}",
            f"out={out}", f"seed={demo.seed}", f"episodes={budget.planner_episodes}",
            f"world_model.steps={budget.planner_steps}", f"probe_steps={budget.planner_steps}"])
    return out


def solve(demo: DemoConfig, agent: list[str]) -> Path:
    """Run one agent on the demo's PHYRE-Lite puzzles unless done; returns its result dir."""
    out = Path(demo.out) / "solve"
    result_dir = out / f"{agent[0].split('=')[1]}_{SOLVE_SPLIT}_fold{SOLVE_FOLD}"
    if not (result_dir / "results.json").is_file():
        run_command("solve", [*agent, f"split={SOLVE_SPLIT}", f"fold={SOLVE_FOLD}",
                              f"puzzles={demo.budget.puzzles}",
                              f"attempts={demo.budget.attempts}", f"out={out}"])
    return result_dir


def mask_videos(demo: DemoConfig, heldout: EpisodeStore) -> list[tuple[Path, Episode, int]]:
    """GIFs of the held-out episodes with the most collisions, each strategy's mask overlaid."""
    grid = model_preset(demo.budget.model).grid
    busiest = sorted(range(len(heldout)), key=lambda i: -len(heldout[i].collisions))
    videos = []
    for i in busiest[: demo.videos]:
        path = Path(demo.out) / "media" / f"masks_heldout_{i:04d}.gif"
        episode = heldout[i]
        if not path.is_file():
            write_mask_video(path, episode.frames, grid, demo.overlay_strategies, seed=demo.seed)
        videos.append((path, episode, i))
    return videos


# ---- plots -----------------------------------------------------------------------------------
def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def energy_png(episode: Episode, title: str) -> bytes:
    """Kinetic, potential and total energy over time, collision frames marked."""
    seconds = np.arange(episode.num_frames) / float(episode.meta.get("fps", 30.0))
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    for key, style in (("kinetic", "-"), ("potential", "-"), ("total", "k--")):
        ax.plot(seconds, episode.energy[key], style, label=key, lw=2)
    for i, frame in enumerate(sorted({c["frame"] for c in episode.collisions})):
        ax.axvline(seconds[frame], color="gray", lw=0.8, ls=":",
                   label="collision" if i == 0 else None)
    ax.set(xlabel="time [s]", ylabel="energy [J, simulation units]", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return figure_png(fig)


def read_log(run_dir: Path) -> tuple[list[int], list[float]]:
    """(steps, losses) from a pretraining run's log.csv."""
    with open(run_dir / "log.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def loss_png(run_dirs: dict[str, Path]) -> bytes:
    """Pretraining loss curves of every strategy."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for strategy, run_dir in run_dirs.items():
        ax.plot(*read_log(run_dir), label=strategy, lw=2)
    ax.set(xlabel="step", ylabel="JEPA loss", title="pretraining loss")
    ax.legend(fontsize=8)
    return figure_png(fig)


def comparison_png(controls: dict[str, dict[str, float]], strategies: list[str]) -> bytes:
    """A panel per metric: floor, static, pixel, the strategies, ceiling."""
    columns = ["floor", "static", "pixel", *strategies, "ceiling"]
    fig, axes = plt.subplots(2, -(-len(controls) // 2), figsize=(13, 5.4), dpi=100,
                             squeeze=False)
    for ax, (name, row) in zip(axes.ravel(), controls.items()):
        ax.bar(range(len(columns)), [row.get(c, np.nan) for c in columns],
               color=["0.6", "0.75", "0.85", *["C0"] * len(strategies), "C2"])
        ax.set_xticks(range(len(columns)), columns, rotation=45, fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
    for ax in axes.ravel()[len(controls):]:
        ax.axis("off")
    return figure_png(fig)


# ---- summary and report ----------------------------------------------------------------------
def metric_rows(evals: dict[str, dict], baseline: str) -> dict[str, dict[str, float]]:
    """Scalar metrics per strategy plus entropy gains in % over the baseline."""
    rows = {s: {k: v for k, v in scalar_metrics(e).items() if k in COMPARED_METRICS}
            for s, e in evals.items()}
    for row in rows.values():
        for key in ("RankMe", "Gaussian entropy"):
            row[f"{key} gain %"] = gain_pct(row[key], rows[baseline][key])
    return rows


def control_rows(evals: dict[str, dict]) -> dict[str, dict[str, float]]:
    """metric -> floor, static, pixel, each strategy, ceiling and each strategy's gap closed
    (controls from the first strategy's evaluation: the splits are shared)."""
    first = next(iter(evals.values()))["metrics"]
    return {name: {**{c: first[name][c] for c in CONTROLS},
                   **{s: e["metrics"][name]["encoder"] for s, e in evals.items()},
                   **{f"gap closed {s}": e["metrics"][name]["gap_closed"]
                      for s, e in evals.items()}}
            for name in COMPARED_METRICS if name in first}


def solve_rows(result_dirs: dict[str, Path]) -> dict[str, dict]:
    """Overall PHYRE-Lite summary per agent (from results.json)."""
    return {agent: json.loads((d / "results.json").read_text())["summary"]["overall"]
            for agent, d in result_dirs.items()}


def puzzle_gifs(result_dirs: dict[str, Path]) -> list[tuple[str, bytes]]:
    """(caption, GIF) of every solved puzzle video the agents wrote."""
    gifs = []
    for agent, result_dir in result_dirs.items():
        for mp4 in sorted((result_dir / "videos").glob("*.mp4")):
            gifs.append((f"{agent}: solved {mp4.stem}", gif_bytes(iio.imread(mp4), fps=15)))
    return gifs


def write_report(demo: DemoConfig, summary: dict, plots: dict[str, bytes],
                 videos: list[tuple[Path, Episode, int]], gifs: list[tuple[str, bytes]]) -> Path:
    """out/report.html: every table, plot and video inline."""
    r = html_report
    metrics = [{"strategy": s, **row} for s, row in summary["metrics"].items()]
    controls = [{"metric": m, **row} for m, row in summary["controls"].items()]
    agents = [{"agent": a, **row} for a, row in summary["solve"].items()]
    panels = ", ".join(["clip", *demo.overlay_strategies])
    sections = [
        ("Setup", [r.table([{"key": k, "value": str(v)} for k, v in summary["setup"].items()],
                           "key")]),
        ("Encoders compared", [
            r.note(f"held-out split (seed {demo.heldout_seed}); baseline "
                   f"{demo.strategies[-1]}; gains in % over it"),
            r.note("every metric next to its controls: floor = the architecture at "
                   "initialisation, static = first frame repeated, pixel = frame differences, "
                   "ceiling = ground-truth state; gap closed = (encoder - floor) / "
                   "(ceiling - floor)"),
            r.table(controls, "metric"),
            r.image_tag(plots["comparison"], "image/png",
                        "floor, static, pixel, strategies, ceiling per metric"),
            r.table(metrics, "strategy"),
            r.image_tag(plots["loss"], "image/png", "pretraining loss")]),
        ("What each strategy hides", [
            r.note(f"panels left to right: {panels}; red = hidden target tokens")]
            + [r.image_tag(path.read_bytes(), "image/gif",
                           f"held-out episode {i}: {len(ep.collisions)} collisions")
               for path, ep, i in videos]),
        ("Energy", [r.image_tag(plots["energy"], "image/png", "energy of the busiest episode")]),
        ("PHYRE-Lite puzzles", [r.table(agents, "agent")]
            + [r.note(n) for n in summary["notes"]]
            + [r.image_tag(gif, "image/gif", caption) for caption, gif in gifs]),
        ("Stage timings", [r.table([{"stage": k, "seconds": v}
                                    for k, v in summary["seconds"].items()], "stage")]),
    ]
    return r.write_page(Path(demo.out) / "report.html", "ia-world demo", sections)


def print_summary(summary: dict) -> None:
    """The closing console summary: the key numbers and where the report is."""
    print("\n== ia-world demo ==")
    for strategy, row in summary["metrics"].items():
        gap = summary["controls"]["R2 mean_speed (fixed count)"][f"gap closed {strategy}"]
        print(f"{strategy:>12}: energy R2 {row['R2 total_energy']:+.3f}  mean-speed R2 "
              f"(fixed count) {row['R2 mean_speed (fixed count)']:+.3f} (gap closed {gap:+.2f})  "
              f"RankMe {row['RankMe']:.2f} ({row['RankMe gain %']:+.1f}%)  "
              f"selectivity {row['selectivity']:.3f}  hit@0.1 {row['hit@0.1']:.3f}  "
              f"causal QA {row['QA causal per-question']:.3f}")
    for agent, row in summary["solve"].items():
        print(f"{agent:>12}: AUCCESS {row['auccess']:.3f} on {row['puzzles']} puzzles")
    for line in summary["notes"]:
        print(f"note: {line}")
    print(f"report: {summary['report']}  ({sum(summary['seconds'].values()):.0f} s)")


def run(cfg: DictConfig) -> dict:
    """Entry point of `ia-world demo`: run (or resume) every stage; returns summary.json."""
    demo = to_dataclass(cfg, DemoConfig)
    budget, out, seconds = demo.budget, Path(demo.out), {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        seconds[stage], clock = round(time.perf_counter() - clock, 1), time.perf_counter()

    data = {name: generate_split(demo, name, count, seed) for name, count, seed in (
        ("pretrain", budget.episodes, demo.seed),
        ("probe", budget.probe_episodes, demo.probe_seed),
        ("heldout", budget.heldout_episodes, demo.heldout_seed))}
    lap("generate")
    run_dirs = {s: pretrain(demo, s) for s in demo.strategies}
    lap("pretrain")
    evals = {s: evaluate(demo, d) for s, d in run_dirs.items()}
    lap("evaluate")
    agents = {"random": ["agent=random"]}
    notes = []
    if latent_agent_available():
        encoder_run = run_dirs[demo.strategies[0]]
        agents["latent"] = ["agent=latent", f"agent.encoder={encoder_run}",
                            f"agent.world_model={train_world_model(demo, encoder_run)}",
                            f"agent.planner.population={budget.planner_population}",
                            f"agent.planner.elites={max(budget.planner_population // 8, 1)}",
                            f"agent.planner.iterations={budget.planner_iterations}"]
    else:
        notes.append("latent planner skipped: agent=latent (agents/latent_agent.py) is not "
                     "installed")
    result_dirs = {name: solve(demo, overrides) for name, overrides in agents.items()}
    lap("solve")
    heldout = EpisodeStore(out / "data" / "heldout")
    videos = mask_videos(demo, heldout)
    busiest = videos[0][1] if videos else heldout[0]
    summary = {"setup": {"preset": demo.preset, "env": demo.env.id, "model": budget.model,
                         "pretrain steps": budget.steps, "batch size": budget.batch_size,
                         "strategies": demo.strategies,
                         **{f"{k} episodes": v["episodes"] for k, v in data.items()}},
               "data": data, "metrics": metric_rows(evals, demo.strategies[-1]),
               "controls": control_rows(evals),
               "solve": solve_rows(result_dirs), "notes": notes, "seconds": seconds,
               "config": as_dict(demo), "report": str(out / "report.html")}
    plots = {"energy": energy_png(busiest, f"{len(busiest.collisions)} collisions"),
             "loss": loss_png(run_dirs),
             "comparison": comparison_png(summary["controls"], demo.strategies)}
    lap("report")
    write_report(demo, summary, plots, videos, puzzle_gifs(result_dirs))
    atomic_write_json(out / "summary.json", summary)
    print_summary(summary)
    return summary

