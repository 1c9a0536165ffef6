"""`ia-world world_model`: train the latent world model and goal probe on a PHYRE-Lite fold.

Random placements on the fold's FIT tasks only (its train tasks less the `val` puzzles kept for
choosing planner levers: envs/phyre_lite/splits.role_tasks) are simulated; each placement
becomes window latents: window 0 encodes the still initial scene with the red ball (the frame
repeated), windows 1..K-1 encode consecutive clips of the recorded rollout (agents/placements.py,
cached by agents/window_cache.py). A block-causal world model (agents/world_model_net.py) is fit
on them and a linear goal probe (agents/goal_probe.py) on the world model's rollouts from
window 0 (label: solved) of other train episodes, never used to fit the dynamics
(`episode_roles`): the probe learns on out-of-sample rollouts, as it is used at test time. The
directory it writes is what `agent=latent` and `ia-world surprise` load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from agents.goal_probe import fit_goal_probes, probe_diagnostics
from agents.placements import FEATURES
from agents.window_cache import collect_windows
from agents.world_model_net import (
    WorldModelConfig,
    rollout_errors,
    save_world_model,
    train_world_model,
    window_errors,
)
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, role_tasks, split_tasks
from ia_world.checkpoint import METRICS_FILE, write_metrics
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.errors import ConfigError
from ia_world.runlock import run_lock


@dataclass
class WorldModelTrainConfig:
    """`ia-world world_model`: placements simulated on a fold's train tasks, model and probe."""

    encoder: str = ""  # checkpoint or run directory of the frozen encoder (features=encoder)
    split: str = "cross"  # within | cross
    fold: int = 0  # 0..4
    episodes: int = 2000  # simulated random placements on the fold's train tasks
    test_episodes: int = 200  # on the fold's test tasks: reported, never fit or selected on
    windows: int = 5  # K: window 0 (still scene) + K-1 rollout clips
    frame_stride: int = 10  # physics steps per recorded frame
    focus_share: float = 0.5  # share of placements sampled just above the green body
    # 0: placements as drawn (~5% solve); > 0: exactly this share of the train and of the test
    # episodes solve (placements drawn until both classes are full; a physics-only pre-run
    # labels each draw, and the share among all draws is reported)
    solved_share: float = 0.0
    condition_action: bool = False  # the placement (x, y, r) conditions the world model too
    cache: str = ""  # directory caching the simulated windows ("" = none; see window_cache)
    workers: int = 2  # processes that simulate placements (the results do not depend on it)
    probe_steps: int = 300  # goal-probe training steps
    probe_weight_decay: float = 1e-3  # goal-probe weight decay
    holdout: float = 0.2  # share of episodes held out for the rollout-vs-copy check
    # share of episodes the goal probes are fit on (rollouts of episodes the dynamics never saw)
    probe_share: float = 0.25
    out: str = "runs/world_model"  # world model, probe and metrics.json go here
    seed: int = 0  # placement sampling seed
    # encoder: frozen-encoder latents; state: the simulator's body states (positive control)
    features: str = "encoder"
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)

    def validate(self) -> None:
        """Range-check the keys."""
        check_choice("features", self.features, FEATURES)
        if self.features == "encoder":
            check_path("encoder", self.encoder)
        check_path("out", self.out)
        check_choice("split", self.split, SPLITS)
        check_range("fold", self.fold, 0, NUM_FOLDS - 1)
        check_range("episodes", self.episodes, 4, 10**7)
        check_range("test_episodes", self.test_episodes, 0, 10**7)
        check_range("windows", self.windows, 2, self.world_model.max_windows)
        check_range("frame_stride", self.frame_stride, 1, 100)
        check_range("focus_share", self.focus_share, 0.0, 1.0)
        check_range("solved_share", self.solved_share, 0.0, 0.9)
        check_range("workers", self.workers, 1, 256)
        check_range("probe_steps", self.probe_steps, 1, 10**6)
        check_range("probe_weight_decay", self.probe_weight_decay, 0.0, 10.0)
        check_range("holdout", self.holdout, 0.0, 0.9)
        check_range("probe_share", self.probe_share, 0.0, 0.9)
        roles = episode_roles(self.episodes, self.holdout, self.probe_share)
        if len(range(self.episodes)[roles["dynamics"]]) < 2:
            raise ConfigError(f"holdout={self.holdout} + probe_share={self.probe_share} leave "
                              f"fewer than 2 of episodes={self.episodes} to fit the dynamics")


def episode_roles(episodes: int, holdout: float, probe_share: float) -> dict[str, slice]:
    """Disjoint train-episode ranges: `heldout` (checks only), `probe` (fits the goal probes on
    the world model's rollouts, out of sample) and `dynamics` (fits the world model)."""
    held = max(1, int(holdout * episodes))
    probe = held + max(1, int(probe_share * episodes))
    return {"heldout": slice(0, held), "probe": slice(held, probe),
            "dynamics": slice(probe, episodes)}


def train_stage(config: WorldModelTrainConfig) -> Path:
    """Train the world model and goal probe on the fold's train tasks; save them; print checks.

    Checked on held-out train-task episodes and on `test_episodes` of the fold's test tasks
    (used for these numbers only; nothing is fit or selected on them). Returns the directory.
    `out=` is checked writable and locked (one writer) before any work.
    """
    validate_tree(config)
    with run_lock(config.out):
        return train_and_save(config)


def train_and_save(config: WorldModelTrainConfig) -> Path:
    """The work of `train_stage` on a validated config, its `out=` held."""
    data = collect_windows(config)
    windows, labels = data["windows"], data["labels"]
    config.world_model.latent_dim, config.world_model.tokens_per_window = windows.shape[2:][::-1]
    config.world_model.action_dim = 3 if config.condition_action else 0
    actions = data["actions"] if config.condition_action else None

    def rows(part: slice) -> torch.Tensor | None:
        return actions[part] if actions is not None else None

    roles = episode_roles(config.episodes, config.holdout, config.probe_share)
    fit, heldout, probe_fit = roles["dynamics"], roles["heldout"], roles["probe"]
    model = train_world_model(config.world_model, windows[fit], rows(fit), labels[fit])
    horizon = config.windows - 1
    probe = fit_goal_probes(model, windows[probe_fit], labels[probe_fit], rows(probe_fit), config)
    train_share, test_share = data["drawn_solved_share"].tolist()
    metrics = {"episodes": config.episodes, "solved_share": float(labels[fit].float().mean()),
               "probe_solved": int(labels[probe_fit].sum()),
               "episode_roles": {k: [r.start, r.stop] for k, r in roles.items()},
               "drawn_solved_share": {"train": train_share, "test": test_share}}
    for name, check in (("heldout", heldout), ("test_tasks", slice(config.episodes, None))):
        if check.start < len(windows):
            metrics[name] = {**rollout_errors(model, windows[check], 1, rows(check)),
                             **probe_diagnostics(model, probe, windows, labels, actions,
                                                 probe_fit, check, config)}
    out = Path(config.out)
    reference = window_errors(model, windows[heldout], rows(heldout)).median(0).values
    save_world_model(model, out, {**probe, "horizon": torch.tensor(horizon),
                                  "surprise.reference": reference.clamp_min(1e-8),
                                  "train.split": torch.tensor(SPLITS.index(config.split)),
                                  "train.fold": torch.tensor(config.fold),
                                  "train.val_held": torch.tensor(1),  # fit tasks only
                                  "features": torch.tensor(FEATURES.index(config.features))})
    write_metrics(out / METRICS_FILE, {"config": as_dict(config), "metrics": metrics})
    print(json.dumps(metrics, indent=1))
    return out


def trained_tasks(directory: str | Path, extra: dict[str, torch.Tensor]) -> set[str]:
    """Task ids a saved world model and its probe were trained on: its fold's fit tasks (all its
    train tasks, val ones included, when written before the val role); every world model of
    format version 1 holds train.split and train.fold."""
    split, fold = SPLITS[int(extra["train.split"])], int(extra["train.fold"])
    return set(role_tasks(split, fold)["fit"] if "train.val_held" in extra
               else split_tasks(split, fold)[0])


def check_zero_shot(directory: str | Path, extra: dict[str, torch.Tensor],
                    tasks: list[str]) -> None:
    """Refuse to test a world model on puzzles it was trained on (a split or fold mismatch)."""
    seen = sorted(trained_tasks(directory, extra).intersection(tasks))
    if seen:
        split, fold = SPLITS[int(extra["train.split"])], int(extra["train.fold"])
        raise ConfigError(f"{directory}: trained on split={split} fold={fold}, whose train tasks "
                          f"include {len(seen)} of the {len(set(tasks))} test puzzles (e.g. "
                          f"{seen[0]}): zero-shot needs a world model of the same split and fold")
