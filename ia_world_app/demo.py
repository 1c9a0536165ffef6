"""`ia-world demo`: the whole pipeline end to end, one self-contained HTML report at the end.

Stages (each resumable: complete outputs are kept and skipped on a re-run):
generate pretraining / probe / held-out Billiards data (three base seeds) -> `compare` (pretrain
every strategy with the same budget, evaluate each, report.py's tables) -> `world_model` of the
first strategy's encoder -> `solve` PHYRE-Lite puzzles with the random agent and the latent
planner -> mask-overlay videos -> out/report.html + out/summary.json. DemoConfig nests the real
stage configs (CompareConfig, WorldModelTrainConfig, SolveConfig); the stages are called with
them (`dataclasses.replace`d with the demo's paths), never with override strings. Presets
(configs/preset/<name>.yaml) are YAML overrides of those nested configs.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import imageio.v3 as iio
import matplotlib
import numpy as np
import torch

from agents.planner import PlannerConfig
from agents.solve import SolveConfig, solve
from agents.world_model import WorldModelTrainConfig, train_stage
from agents.world_model_net import WorldModelConfig
from ia_world.atomic import atomic_write_json
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.data.episode import Episode
from ia_world.data.generator import EnvConfig, GenerateConfig, dataset_stats, generate
from ia_world.data.shards import EpisodeStore
from ia_world.data.sources import DataConfig, DataSource
from ia_world.errors import ConfigError
from ia_world.eval.collision_probe import CollisionProbeConfig
from ia_world.eval.evaluate import EvalConfig, FixedSplitConfig
from ia_world.eval.qa_head import QAHeadConfig
from ia_world.eval.splits import heldout_seeds
from ia_world.masking import STRATEGIES
from ia_world.report import control_table, group_by_strategy, metric_table, read_eval
from ia_world.runlock import check_out_dir
from ia_world.training import PretrainConfig
from ia_world.viz import gif_bytes, write_mask_video
from ia_world_app import html_report
from ia_world_app.compare import EACH_RUN, CompareConfig, compare, run_dirs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the file-only backend)

PLACEHOLDER = "(set by the demo)"  # paths and seeds the demo fills in from out / seed / env
COMPARED_METRICS = ("R2 total_energy", "R2 mean_speed", "R2 object_velocity",
                    "R2 total_energy (fixed count)", "R2 mean_speed (fixed count)",
                    "R2 mass_ratio (collision)", "QA descriptive per-option",
                    "QA predictive per-option", "RankMe",
                    "RankMe gain %", "Gaussian entropy", "Gaussian entropy gain %", "hit@0.05",
                    "hit@0.1", "hit@0.4", "selectivity", "QA causal per-question")


def demo_compare() -> CompareConfig:
    """The demo's pretraining and evaluation: the `interaction` encoder, one seed, the cpu
    preset's budget. configs/demo.yaml lays the CPU learning regime over `pretrain`; there every
    strategy hides the same tokens (every token after the first time step), so a second
    strategy would train the same network again (`ia-world compare` with
    `pretrain.masking.target_share` < 1 compares strategies)."""
    return CompareConfig(
        root=PLACEHOLDER, out=PLACEHOLDER, strategies=["interaction"], seeds=[0],
        pretrain=PretrainConfig(
            out=EACH_RUN, data=DataConfig(source=DataSource.shards, path=PLACEHOLDER,
                                          num_workers=0),
            # for the demo's 1,000 steps, chosen on the val split over 3 seeds against the
            # regime's lr 5e-4 / warmup 50 (docs/results/demo.md)
            lr=1e-3, warmup_steps=10, batch_size=8, log_every=50, checkpoint_every=500),
        evaluate=EvalConfig(
            ckpt=EACH_RUN, train_episodes=48, heldout_episodes=48,
            qa=QAHeadConfig(epochs=5, min_questions=20),
            fixed=FixedSplitConfig(train_episodes=1200),  # the learning curves' fitting size
            collision=CollisionProbeConfig(train_episodes=128, heldout_episodes=64)))


def demo_world_model() -> WorldModelTrainConfig:
    """The demo's world model: on the within split's fold 0, from the first strategy's encoder,
    with balanced placements and action conditioning (docs/results/world-model-levers.md)."""
    return WorldModelTrainConfig(encoder=PLACEHOLDER, split="within", out=PLACEHOLDER,
                                 episodes=300, solved_share=0.5, condition_action=True,
                                 world_model=WorldModelConfig(steps=400))


@dataclass
class DemoConfig:
    """`ia-world demo`: data, then the real stage configs (compare, world_model, solve) nested;
    `preset=micro|cpu|gpu` (configs/preset/<name>.yaml) overrides their budgets."""

    preset: str = "cpu"  # the preset's name (configs/preset/<name>.yaml), shown in the report
    env: EnvConfig = field(default_factory=EnvConfig)
    out: str = "runs/demo"  # data/, runs/, report/, world_model/, solve/, media/, report.html
    seed: int = 0  # pretraining data seed (compare.seeds seed the models)
    episodes: int = 96  # pretraining episodes generated
    frames: int = 32  # frames per generated episode
    # pretrain + evaluate every strategy, then report.py's tables (root, out, the data paths,
    # env and device are set from out / env / device)
    compare: CompareConfig = field(default_factory=demo_compare)
    # the latent planner's world model (encoder, out and seed are set by the demo)
    world_model: WorldModelTrainConfig = field(default_factory=demo_world_model)
    # the puzzles both agents solve (split and fold follow world_model's; out is set)
    solve: SolveConfig = field(default_factory=lambda: SolveConfig(puzzles=1, attempts=20,
                                                                   out=PLACEHOLDER))
    planner: PlannerConfig = field(default_factory=PlannerConfig)  # the latent agent's search
    # panels of the mask videos
    overlay_strategies: list[str] = field(
        default_factory=lambda: ["random_tube", "motion", "accel", "interaction"])
    workers: int = 1  # generator processes
    videos: int = 3  # held-out episodes shown with masks overlaid
    device: str = "auto"  # pretraining device: auto | cpu | cuda

    def validate(self) -> None:
        """Raise ConfigError on an unknown strategy, equal seeds, or bad sizes."""
        check_path("out", self.out)
        for strategy in self.overlay_strategies:
            check_choice("overlay_strategies", strategy, STRATEGIES)
        evaluate = self.compare.evaluate
        if len({self.seed, evaluate.train_seed, heldout_seeds(evaluate.role).heldout}) < 3:
            raise ConfigError("seed, compare.evaluate.train_seed and the role's held-out seed "
                              "must all differ")
        check_range("episodes", self.episodes, 1, 10**7)
        check_range("frames", self.frames, 2, 10_000)
        check_range("workers", self.workers, 1, 256)
        check_range("videos", self.videos, 0, 1000)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


# ---- stages: typed configs in, the stage functions called directly ---------------------------
def generate_split(demo: DemoConfig, name: str, episodes: int, seed: int) -> dict:
    """Generate (or finish) one dataset out/data/<name>; returns its episode statistics."""
    cfg = GenerateConfig(env=demo.env, out=str(Path(demo.out) / "data" / name),
                         episodes=episodes, frames=demo.frames, size=64,
                         shard_size=min(episodes, 128), seed=seed, workers=demo.workers)
    return dataset_stats(generate(cfg))


def compare_config(demo: DemoConfig) -> CompareConfig:
    """The nested CompareConfig with the demo's data, directories, env and device filled in."""
    out, cfg = Path(demo.out), demo.compare
    device = "cuda" if demo.device != "cpu" and torch.cuda.is_available() else "cpu"
    data = replace(cfg.pretrain.data, source=DataSource.shards, path=str(out / "data" / "pretrain"))
    return replace(
        cfg, root=str(out / "runs"), out=str(out / "report"),
        pretrain=replace(cfg.pretrain, data=data, env=demo.env, device=demo.device),
        evaluate=replace(cfg.evaluate, env=demo.env, device=device,
                         train_data=str(out / "data" / "probe"),
                         heldout_data=str(out / "data" / "heldout")))


def train_world_model(demo: DemoConfig, encoder_run: Path) -> Path:
    """Train the latent planner's world model + goal probe on the fold's train puzzles, once."""
    out = Path(demo.out) / "world_model"
    if not (out / "metrics.json").is_file():
        train_stage(replace(demo.world_model, encoder=str(encoder_run), out=str(out),
                            seed=demo.seed))
    return out


def solve_puzzles(demo: DemoConfig, agent: dict) -> Path:
    """Run one agent on the demo's PHYRE-Lite puzzles unless done; returns its result dir."""
    out = Path(demo.out) / "solve"
    split, fold = demo.world_model.split, demo.world_model.fold
    result_dir = out / f"{agent['name']}_{split}_fold{fold}"
    if not (result_dir / "results.json").is_file():
        solve(replace(demo.solve, agent=agent, split=split, fold=fold, out=str(out)))
    return result_dir


def mask_videos(demo: DemoConfig, heldout: EpisodeStore) -> list[tuple[Path, Episode, int]]:
    """GIFs of the held-out episodes with the most collisions, each strategy's mask overlaid."""
    grid = demo.compare.pretrain.model.grid
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


# ---- summary and report ----------------------------------------------------------------------
def metric_rows(evals: dict[str, list[dict]], baseline: str) -> dict[str, dict[str, float]]:
    """Scalar metrics per strategy (mean over seeds), entropy gains over the baseline included
    (report.py's numbers)."""
    return {s: {k: float(np.mean(v)) for k, v in cols.items() if k in COMPARED_METRICS}
            for s, cols in metric_table(evals, baseline).items()}


def speed_gap_cis(evals: dict[str, list[dict]]) -> dict[str, list[list[float]]]:
    """Per strategy, each run's 95% paired-bootstrap CI (held-out episodes) of the fixed-count
    mean-speed gap closed."""
    return {s: [result["metrics"]["R2 mean_speed (fixed count)"]["paired_ci"]["gap_closed"]
                for result in results] for s, results in evals.items()}


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


def write_report(demo: DemoConfig, summary: dict, report_md: Path, plots: dict[str, bytes],
                 videos: list[tuple[Path, Episode, int]], gifs: list[tuple[str, bytes]]) -> Path:
    """out/report.html: every table, plot and video inline (the comparison is report.py's)."""
    r = html_report
    agents = [{"agent": a, **row} for a, row in summary["solve"].items()]
    panels = ", ".join(["clip", *demo.overlay_strategies])
    sections = [
        ("Setup", [r.table([{"key": k, "value": str(v)} for k, v in summary["setup"].items()],
                           "key")]),
        ("The pretrained encoder", [*r.markdown(report_md),
                               r.image_tag(plots["loss"], "image/png", "pretraining loss")]),
        ("What each strategy hides", [
            r.note(f"panels left to right: {panels}; red = hidden target tokens")]
            + [r.image_tag(path.read_bytes(), "image/gif",
                           f"held-out episode {i}: {len(ep.collisions)} collisions")
               for path, ep, i in videos]),
        ("Energy", [r.image_tag(plots["energy"], "image/png", "energy of the busiest episode")]),
        ("PHYRE-Lite puzzles", [r.table(agents, "agent")]
            + [r.image_tag(gif, "image/gif", caption) for caption, gif in gifs]),
        ("Stage timings", [r.table([{"stage": k, "seconds": v}
                                    for k, v in summary["seconds"].items()], "stage")]),
    ]
    return r.write_page(Path(demo.out) / "report.html", "ia-world demo", sections)


def print_summary(summary: dict) -> None:
    """The closing console summary: the key numbers and where the report is."""
    print("\n== ia-world demo ==")
    for strategy, row in summary["metrics"].items():
        gap = np.mean(summary["controls"]["R2 mean_speed (fixed count)"][f"gap closed {strategy}"])
        cis = " ".join(f"[{low:+.2f}, {high:+.2f}]"
                       for low, high in summary["speed_gap_ci"][strategy])
        gain = (f" ({row['RankMe gain %']:+.1f}% over the baseline strategy)"
                if "RankMe gain %" in row else "")  # none without the baseline strategy
        masks = (f"selectivity {row['selectivity']:.3f}  hit@0.1 {row['hit@0.1']:.3f}  "
                 if "selectivity" in row else "")  # none where every later token is a target
        print(f"{strategy:>12}: energy R2 {row['R2 total_energy']:+.3f}  mean-speed R2 "
              f"(fixed count) {row['R2 mean_speed (fixed count)']:+.3f} (gap closed {gap:+.2f}, "
              f"95% CI {cis})  "
              f"RankMe {row['RankMe']:.2f}{gain}  {masks}"
              f"causal QA {row['QA causal per-question']:.3f}  mass ratio R2 (collision probe) "
              f"{row.get('R2 mass_ratio (collision)', float('nan')):+.3f}")
    for agent, row in summary["solve"].items():
        print(f"{agent:>12}: AUCCESS {row['auccess']:.3f} on {row['puzzles']} puzzles")
    print(f"report: {summary['report']}  ({sum(summary['seconds'].values()):.0f} s)")


def demo(cfg: DemoConfig) -> dict:
    """Run (or resume) every stage of the demo; returns what summary.json holds."""
    validate_tree(cfg)
    check_out_dir(cfg.out)  # before any work
    out, seconds = Path(cfg.out), {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        seconds[stage], clock = round(time.perf_counter() - clock, 1), time.perf_counter()

    evaluate_cfg = cfg.compare.evaluate
    data = {name: generate_split(cfg, name, count, seed) for name, count, seed in (
        ("pretrain", cfg.episodes, cfg.seed),
        ("probe", evaluate_cfg.train_episodes, evaluate_cfg.train_seed),
        ("heldout", evaluate_cfg.heldout_episodes, heldout_seeds(evaluate_cfg.role).heldout))}
    lap("generate")
    comparison = compare_config(cfg)
    report_md = compare(comparison)
    runs = run_dirs(comparison)
    evals = group_by_strategy([read_eval(run, comparison.encoder_weights) for _, _, run in runs])
    lap("compare")
    encoder_run = runs[0][2]
    agents = {"random": {"name": "random"},
              "latent": {"name": "latent", "encoder": str(encoder_run),
                         "world_model": str(train_world_model(cfg, encoder_run)),
                         "planner": as_dict(cfg.planner)}}
    result_dirs = {name: solve_puzzles(cfg, agent) for name, agent in agents.items()}
    lap("solve")
    heldout = EpisodeStore(out / "data" / "heldout")
    videos = mask_videos(cfg, heldout)
    busiest = videos[0][1] if videos else heldout[0]
    pretrain_cfg = comparison.pretrain
    summary = {"setup": {"preset": cfg.preset, "env": cfg.env.id,
                         "model": pretrain_cfg.model.name, "pretrain steps": pretrain_cfg.steps,
                         "batch size": pretrain_cfg.batch_size,
                         "strategies": comparison.strategies, "seeds": comparison.seeds,
                         **{f"{k} episodes": v["episodes"] for k, v in data.items()}},
               "data": data, "metrics": metric_rows(evals, comparison.baseline),
               "controls": control_table(evals), "speed_gap_ci": speed_gap_cis(evals),
               "solve": solve_rows(result_dirs), "seconds": seconds,
               "config": as_dict(cfg), "report": str(out / "report.html"),
               "comparison": str(report_md)}
    plots = {"energy": energy_png(busiest, f"{len(busiest.collisions)} collisions"),
             "loss": loss_png({f"{s}-seed{seed}": run for s, seed, run in runs})}
    lap("report")
    write_report(cfg, summary, report_md, plots, videos, puzzle_gifs(result_dirs))
    atomic_write_json(out / "summary.json", summary)
    print_summary(summary)
    return summary
