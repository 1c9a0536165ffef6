"""`ia-world evaluate ckpt=<dir>`: dynamic probes, latent entropy, causal QA, mask hit-rate.

Every metric is computed for the encoder and four controls in the same run, on the same splits,
with the same probe / head and search (ia_world/eval/features.py): floor (the architecture at
its initialisation), static (first frame repeated), pixel (frame differences) and ceiling
(ground-truth state), plus gap_closed = (encoder - floor) / (ceiling - floor).
Probes are fitted on a training split and scored on a held-out split (probe splits: simulated
from their own base seeds or read from generated datasets; fixed-count splits: simulated with
every scene at `fixed.count` bodies, for probes counting cannot explain and for causal QA); no
seed of any split may appear in pretraining. Results go to metrics.json under "eval".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from omegaconf import MISSING
from tqdm import tqdm

from ia_world.checkpoint import (
    ENCODER_WEIGHTS,
    METRICS_FILE,
    initial_encoder,
    load_encoder,
    read_metrics,
    resolve_checkpoint,
    resolve_weights,
    write_metrics,
)
from ia_world.config import (
    as_dict,
    check_choice,
    check_path,
    check_range,
    to_dataclass,
    validate_tree,
)
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.generator import EnvConfig
from ia_world.data.shards import EpisodeStore, episode_seed
from ia_world.data.sources import pretraining_seeds
from ia_world.errors import ConfigError, DataError
from ia_world.eval.collision_probe import (
    CollisionProbeConfig,
    collision_probe,
    collision_splits,
    split_seeds,
)
from ia_world.eval.features import (
    SUBJECTS,
    Features,
    attribute_vocab,
    density_blind_sets,
    dynamic_indices,
    fit_pixel_basis,
    object_velocities,
    split_clips,
    split_features,
)
from ia_world.eval.mask_metrics import episode_batch, strategy_report
from ia_world.eval.probe import MIN_TRAIN, TARGETS, fit_probes, paired_probe_cis
from ia_world.eval.qa import QUESTION_TYPES
from ia_world.eval.qa_generator import generate_questions, shortcut_tokens
from ia_world.eval.qa_head import QAHeadConfig, check_question_counts, evaluate_qa
from ia_world.eval.simulated import (
    FixedSplitConfig,
    check_count,
    fixed_count_env,
    simulate_split,
    target_arrays,
)
from ia_world.eval.spectrum import centred_rankme, gaussian_entropy, rankme, singular_values
from ia_world.eval.split_cache import cached_episodes, cached_questions
from ia_world.eval.splits import ROLES, check_disjoint, heldout_seeds, other_roles
from ia_world.eval.stats import gap_closed
from ia_world.masking import MaskConfig
from ia_world.runlock import run_lock
from ia_world.training import read_pretrain_config

FIXED_TARGETS = ("total_energy", "mean_speed", "num_collisions")


@dataclass
class EvalConfig:
    """`ia-world evaluate`: which checkpoint, on which splits, with which probe and QA budgets."""

    env: EnvConfig = field(default_factory=EnvConfig)
    qa: QAHeadConfig = field(default_factory=QAHeadConfig)
    ckpt: str = MISSING  # checkpoint dir, or a run dir (its `latest` checkpoint)
    out: str | None = None  # where metrics.json goes (default: the checkpoint dir)
    # held-out splits: val (every choice) | test (fresh seeds, claims only): ia_world/eval/splits.py
    role: str = "val"
    train_episodes: int = 96  # probe-fitting / QA-training split
    heldout_episodes: int = 96  # held-out split (R^2, entropy, QA accuracy, mask hit-rate)
    train_seed: int = 1001  # base seed of the probe-fitting split: episode k has seed
    # episode_seed(base, k); every split's seeds differ from the others' and pretraining's
    train_data: str | None = None  # a generated dataset instead of simulating the train split
    heldout_data: str | None = None  # a generated dataset instead of simulating held-out
    horizon: int = 8  # predictive QA: frames simulated past the clip's end
    # simulated splits and questions are kept here and reused by later evaluations (keyed by
    # every key that changes them and the simulator's code); none: simulate every time
    cache: str | None = None
    batch_size: int = 32  # clips per encoder batch
    device: str = "cpu"  # cpu | cuda
    # trained: the run's (checkpoint.trained_weights) | target (EMA) | encoder (online)
    encoder_weights: str = "trained"
    # simulated splits at a fixed body count: dynamic probes and causal QA
    fixed: FixedSplitConfig = field(default_factory=FixedSplitConfig)
    # two-ball Billiards clips with one collision: mass from momentum transfer
    collision: CollisionProbeConfig = field(default_factory=CollisionProbeConfig)

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        if self.encoder_weights not in ENCODER_WEIGHTS:
            raise ConfigError(f"encoder_weights={self.encoder_weights!r} is not one of "
                              f"{ENCODER_WEIGHTS}")
        check_path("ckpt", self.ckpt)
        for key in ("out", "cache"):
            if getattr(self, key) is not None:
                check_path(key, getattr(self, key))
        check_choice("role", self.role, ROLES)
        check_range("train_episodes", self.train_episodes, MIN_TRAIN, 10**7)
        check_range("heldout_episodes", self.heldout_episodes, 2, 10**7)
        check_range("horizon", self.horizon, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_choice("device", self.device, ("cpu", "cuda"))


def split_episodes(path: str | None, count: int, base_seed: int, env_cfg: EnvConfig,
                   frames: int, size: int) -> list[Episode]:
    """`count` episodes: read from a generated dataset, or simulated from episode_seed(base, k)."""
    if path is None:
        env = make_env(env_cfg.id, size=size, **env_cfg.kwargs)
        return [simulate_episode(env, episode_seed(base_seed, k), frames)
                for k in tqdm(range(count), desc=f"simulate (seed {base_seed})", leave=False)]
    store = EpisodeStore(path)
    if len(store) < count:
        raise DataError(f"{path}: {len(store)} episodes, {count} requested")
    store.check_clips(frames, size)
    return [store[k] for k in range(count)]


def mask_report(config: dict, episodes: list[Episode], grid) -> dict | None:
    """Hit-rate and selectivity of the checkpoint's masking strategy on held-out clips (its
    ranking of every token, at the report's ratios); None without a masking config or when
    its strategy chose nothing (context_steps with every later token a target)."""
    if "masking" not in config:
        return None
    masking = to_dataclass(config["masking"], MaskConfig)
    if masking.context_steps and masking.target_share == 1.0:
        return None
    clips, collisions, moving = episode_batch(episodes, grid)
    ranking = replace(masking, context_steps=0, target_share=1.0)
    return strategy_report(ranking, clips, collisions, moving, grid)


def subject_probes(train: dict[str, Features], heldout: dict[str, Features],
                   train_targets: dict[str, np.ndarray], heldout_targets: dict[str, np.ndarray],
                   seed: int, attribute: str = "vector",
                   groups: np.ndarray | None = None) -> dict[str, dict[str, dict]]:
    """target -> subject -> ridge probe result, every subject with the same search."""
    fitted = {subject: fit_probes(getattr(train[subject], attribute), train_targets,
                                  getattr(heldout[subject], attribute), heldout_targets,
                                  seed=seed, groups=groups)
              for subject in train}
    return {name: {subject: fitted[subject][name] for subject in train}
            for name in train_targets}


def density_blind_probes(train: list[Episode], heldout: list[Episode], frames: int,
                         train_targets: dict[str, np.ndarray],
                         heldout_targets: dict[str, np.ndarray], seed: int) -> dict[str, dict]:
    """target -> the density-blind ceiling: the feature set (density_blind_sets) with the best
    leave-one-out error on the TRAINING split, scored on held-out."""
    sets = [fit_probes(x, train_targets, y, heldout_targets, seed=seed) | {"set": name}
            for (name, x), y in zip(density_blind_sets(train, frames).items(),
                                    density_blind_sets(heldout, frames).values())]
    return {target: min(({**fitted[target], "set": fitted["set"]} for fitted in sets),
                        key=lambda result: result["cv_mse"])
            for target in train_targets}


def metric_row(values: dict[str, float], cis: dict[str, list[float]],
               paired: dict[str, list[float]] | None = None) -> dict:
    """One metric for every subject, its CIs, the gap the encoder closes and the paired CIs of
    encoder - each control and of the gap (over held-out episodes, or clips for QA)."""
    row = {**values, "gap_closed": gap_closed(values["encoder"], values["floor"],
                                              values["ceiling"]), "ci": cis}
    if paired is not None:
        row["paired_ci"] = paired
    return row


def metrics_table(probes: dict[str, dict[str, dict]], paired: dict[str, dict],
                  qa: dict) -> dict[str, dict]:
    """metric name -> metric_row, for every probe and QA accuracy (each with its paired CIs)."""
    table = {f"R2 {name}": metric_row({s: r["r2"] for s, r in subjects.items()},
                                      {s: r["ci"] for s, r in subjects.items()}, paired[name])
             for name, subjects in probes.items()}
    for qtype in QUESTION_TYPES:
        for unit in ("per_option", "per_question"):
            by_subject = {s: acc[qtype] for s, acc in qa["subjects"].items() if qtype in acc}
            if set(SUBJECTS) <= set(by_subject):  # (+ the shortcut control, when present)
                table[f"QA {qtype} {unit.replace('_', '-')}"] = metric_row(
                    {s: a[unit] for s, a in by_subject.items()},
                    {s: a[f"{unit}_ci"] for s, a in by_subject.items()},
                    qa.get("paired_ci", {}).get(qtype, {}).get(unit))
    return table


@dataclass
class Splits:
    """The episodes of one evaluation: probe splits, fixed-count splits and their questions."""

    train: list[Episode]
    heldout: list[Episode]
    fixed_train: list[Episode]
    fixed_heldout: list[Episode]
    questions_train: list
    questions_heldout: list
    collision: dict  # "train" / "held-out" -> collision clips (empty when disabled)


def evaluation_splits(cfg: EvalConfig, grid, config: dict) -> Splits:
    """Simulate (or read, or take from cfg.cache) every split of the role, check their seeds
    disjoint, and ask the fixed-count splits' questions."""
    seeds = heldout_seeds(cfg.role)
    fixed_env = fixed_count_env(cfg.env, cfg.fixed.count, grid.size)
    key = {"env": as_dict(cfg.env), "frames": grid.frames, "size": grid.size}
    fixed_key = {**key, "fixed_count": cfg.fixed.count}

    def simulated(count: int, base: int, fixed: bool) -> list[Episode]:
        if fixed:
            return cached_episodes(cfg.cache, {**fixed_key, "count": count, "seed": base},
                                   lambda: simulate_split(fixed_env, count, base, grid.frames))
        return cached_episodes(cfg.cache, {**key, "count": count, "seed": base},
                               lambda: split_episodes(None, count, base, cfg.env, grid.frames,
                                                      grid.size))

    def probe_split(path: str | None, count: int, base: int) -> list[Episode]:
        if path is None:
            return simulated(count, base, fixed=False)
        return split_episodes(path, count, base, cfg.env, grid.frames, grid.size)

    train = probe_split(cfg.train_data, cfg.train_episodes, cfg.train_seed)
    heldout = probe_split(cfg.heldout_data, cfg.heldout_episodes, seeds.heldout)
    fixed_train = simulated(cfg.fixed.train_episodes, cfg.fixed.train_seed, fixed=True)
    fixed_heldout = simulated(cfg.fixed.heldout_episodes, seeds.fixed_heldout, fixed=True)
    check_count(fixed_train + fixed_heldout, cfg.fixed.count)
    collision = (collision_splits(cfg.collision, seeds.collision_heldout, grid.frames, grid.size)
                 if cfg.collision.enabled else {})
    check_disjoint({"probe/QA training": {ep.meta["seed"] for ep in train},
                    f"{cfg.role} held-out": {ep.meta["seed"] for ep in heldout},
                    "fixed-count training": {ep.meta["seed"] for ep in fixed_train},
                    f"{cfg.role} fixed-count held-out": {ep.meta["seed"] for ep in fixed_heldout},
                    **{f"collision {name}": split_seeds(clips)
                       for name, clips in collision.items()},
                    "pretraining": pretraining_seeds(config),
                    **other_roles(cfg.role, {"heldout": cfg.heldout_episodes,
                                             "fixed_heldout": cfg.fixed.heldout_episodes,
                                             "collision_heldout": cfg.collision.heldout_episodes
                                             if cfg.collision.enabled else 0})})
    questions = [cached_questions(cfg.cache, {**fixed_key, "count": len(episodes), "seed": base,
                                              "horizon": cfg.horizon},
                                  lambda episodes=episodes, base=base: generate_questions(
                                      fixed_env, episodes, grid.frames, cfg.horizon, base))
                 for episodes, base in ((fixed_train, cfg.fixed.train_seed),
                                        (fixed_heldout, seeds.fixed_heldout))]
    check_question_counts(questions[0], cfg.qa.min_questions, "training")
    check_question_counts(questions[1], cfg.qa.min_questions, "held-out")
    return Splits(train, heldout, fixed_train, fixed_heldout, *questions, collision)


def measure(cfg: EvalConfig) -> dict:
    """All metrics of one checkpoint and its controls; the dict under metrics.json["eval"]."""
    checkpoint = resolve_checkpoint(cfg.ckpt)
    config = read_pretrain_config(checkpoint)  # validated before any work
    weights = resolve_weights(checkpoint, cfg.encoder_weights)  # "target" | "encoder"
    encoders = {"encoder": load_encoder(checkpoint, cfg.device, weights),
                "floor": initial_encoder(checkpoint, cfg.device, weights)}
    grid = encoders["encoder"].grid
    splits = evaluation_splits(cfg, grid, config)
    train, heldout = splits.train, splits.heldout
    fixed_train, fixed_heldout = splits.fixed_train, splits.fixed_heldout
    vocab = attribute_vocab(train + heldout + fixed_train + fixed_heldout)
    features = {}
    for pair in ({"train": train, "held-out": heldout},
                 {"fixed train": fixed_train, "fixed held-out": fixed_heldout}):
        # the ceiling's object rows are padded to the pair's own largest scene: the fixed-count
        # splits get no padding rows for the QA head to read
        max_objects = max(len(dynamic_indices(ep)) for episodes in pair.values()
                          for ep in episodes)
        clips = {name: split_clips(episodes, grid) for name, episodes in pair.items()}
        basis = fit_pixel_basis(next(iter(clips.values())), grid.shape[0], cfg.train_seed)
        features.update({name: split_features(encoders, episodes, clips[name], vocab,
                                              max_objects, cfg.batch_size, name, basis)
                         for name, episodes in pair.items()})
        del clips  # E T H W 3 uint8 of a 1,600-episode split: hundreds of MB
    seed = cfg.train_seed
    targets = [target_arrays(split, grid.frames, TARGETS) for split in (train, heldout)]
    probes = subject_probes(features["train"], features["held-out"], *targets, seed)
    blind = density_blind_probes(train, heldout, grid.frames, *targets, seed)
    fixed_targets = [target_arrays(split, grid.frames, FIXED_TARGETS)
                     for split in (fixed_train, fixed_heldout)]
    fixed = subject_probes(features["fixed train"], features["fixed held-out"], *fixed_targets,
                           seed)
    fixed_blind = density_blind_probes(fixed_train, fixed_heldout, grid.frames, *fixed_targets,
                                       seed)
    for name, result in blind.items():
        probes[name]["density_blind"] = result
    for name, result in fixed_blind.items():
        fixed[name]["density_blind"] = result
    probes.update({f"{name} (fixed count)": result for name, result in fixed.items()})
    paired = {name: paired_probe_cis(subjects, seed=seed) for name, subjects in probes.items()}
    groups = np.concatenate([[e] * len(dynamic_indices(ep)) for e, ep in enumerate(heldout)])
    probes.update(subject_probes(
        features["train"], features["held-out"],
        {"object_velocity": np.concatenate([object_velocities(ep) for ep in train])},
        {"object_velocity": np.concatenate([object_velocities(ep) for ep in heldout])}, seed,
        attribute="objects", groups=groups))
    paired["object_velocity"] = paired_probe_cis(probes["object_velocity"], groups, seed)
    if splits.collision:
        collision = collision_probe(encoders, splits.collision, cfg.collision.train_seed,
                                    cfg.batch_size)
        for name, subjects in collision.items():
            probes[f"{name} (collision)"] = subjects
            paired[f"{name} (collision)"] = paired_probe_cis(subjects, seed=seed)
    qa_subjects = [{s: f.tokens for s, f in features[name].items()}
                   for name in ("fixed train", "fixed held-out")]
    for subjects, episodes in zip(qa_subjects, (fixed_train, fixed_heldout)):
        # QA's shortcut control: only the events the video shows (docs/results/qa-shortcuts.md)
        subjects["shortcut"] = shortcut_tokens(episodes, grid.frames, cfg.fixed.count, vocab)
    qa = evaluate_qa(splits.questions_train, splits.questions_heldout, *qa_subjects, cfg.qa)
    dim = encoders["encoder"].embed_dim
    pooled, floor_pooled = (features["held-out"][s].vector[:, :dim] for s in ("encoder", "floor"))
    seeds = heldout_seeds(cfg.role)
    return {"run": {"checkpoint": str(checkpoint),
                    "strategy": config.get("masking", {}).get("strategy", "untrained"),
                    "seed": config.get("seed"), "steps": config.get("steps", 0),
                    "weights": weights},
            "splits": {"role": cfg.role, "train_seed": cfg.train_seed,
                       "heldout_seed": seeds.heldout, "train_episodes": len(train),
                       "heldout_episodes": len(heldout), "fixed_count": cfg.fixed.count,
                       "fixed_train_seed": cfg.fixed.train_seed,
                       "fixed_heldout_seed": seeds.fixed_heldout,
                       "fixed_train_episodes": len(fixed_train),
                       "fixed_heldout_episodes": len(fixed_heldout)},
            "metrics": metrics_table(probes, paired, qa),
            "probe": probes,
            "spectrum": {"rankme": rankme(pooled),
                         "rankme_centered": centred_rankme(pooled),
                         "gaussian_entropy": gaussian_entropy(pooled),
                         "singular_values": singular_values(pooled).tolist(),
                         "floor_rankme": rankme(floor_pooled),
                         "floor_rankme_centered": centred_rankme(floor_pooled)},
            "qa": qa, "masking": mask_report(config, heldout, grid)}


def eval_key(weights: str) -> str:
    """metrics.json key of an evaluation of resolved weights: "eval" (EMA target) or
    "eval_encoder" (online encoder)."""
    return "eval" if weights == "target" else f"eval_{weights}"


def evaluate(cfg: EvalConfig) -> dict:
    """Evaluate a checkpoint; writes <out or ckpt>/metrics.json and returns the results.

    Results go under "eval" (EMA target weights) or "eval_encoder" (online encoder weights), so
    evaluating one never overwrites the other. `out=` is checked writable and locked (one
    writer) before minutes of evaluation.
    """
    validate_tree(cfg)
    eval_cfg = cfg
    out = Path(eval_cfg.out) if eval_cfg.out else resolve_checkpoint(eval_cfg.ckpt)
    with run_lock(out):  # creates out= (checked writable) and holds it: one writer
        path = out / METRICS_FILE
        metrics = read_metrics(path) if path.is_file() else {}  # checked before the evaluation
        result = measure(eval_cfg)
        write_metrics(path, {**metrics, eval_key(result["run"]["weights"]): result})
    print(results_table(result["metrics"]) + f"\nevaluate: {path}")
    return result


def results_table(metrics: dict[str, dict]) -> str:
    """The metrics with their controls as a short text table (what `evaluate` prints)."""
    columns = (*SUBJECTS, "shortcut", "density_blind", "gap_closed")
    lines = [f"{'metric':<34}" + "".join(f"{c:>14}" for c in columns) + "  gap closed 95% CI"]
    for name, row in metrics.items():
        gap = row.get("paired_ci", {}).get("gap_closed", [np.nan, np.nan])
        lines.append(f"{name:<34}" + "".join(f"{row.get(c, np.nan):>14.3f}" for c in columns)
                     + f"  [{gap[0]:+.2f}, {gap[1]:+.2f}]")
    return "\n".join(lines)
