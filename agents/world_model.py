"""`ia-world world_model`: train the latent world model and goal probe on a PHYRE-Lite fold.

Random placements on the fold's TRAIN tasks only (the other variants for the within split, the
other templates for the cross split) are simulated; each placement becomes window latents:
window 0 encodes the still initial scene with the red ball (the frame repeated), windows 1..K-1
encode consecutive clips of the recorded rollout. A block-causal world model (agents.dynamics)
is fit on them and a linear goal probe is fit on the world model's rollouts from window 0
(label: solved). The directory it writes is what `agent=latent` and `ia-world surprise` load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymunk
import torch
import torch.nn.functional as F
from einops import repeat
from tqdm import tqdm

from agents.dynamics import (
    WorldModel,
    WorldModelConfig,
    pool_window,
    rollout_errors,
    save_world_model,
    train_world_model,
    window_errors,
)
from envs.phyre_lite.scene import (
    GREEN,
    SCENE,
    add_action_ball,
    attempt,
    body_states,
    build_space,
    placement_error,
    render,
)
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.atomic import atomic_write_json
from ia_world.checkpoint import (
    METRICS_FILE,
    FrozenEncoder,
    clip_batches,
    encode_batches,
    load_encoder,
)
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.errors import CheckpointError, ConfigError
from ia_world.eval.stats import auroc


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
    probe_steps: int = 300  # goal-probe training steps
    probe_weight_decay: float = 1e-3  # goal-probe weight decay
    holdout: float = 0.2  # share of episodes held out for the rollout-vs-copy check
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
        check_range("probe_steps", self.probe_steps, 1, 10**6)
        check_range("probe_weight_decay", self.probe_weight_decay, 0.0, 10.0)
        check_range("holdout", self.holdout, 0.0, 0.9)


@dataclass
class Placement:
    """One simulated placement: still initial frame (H W 3), rollout frames (T H W 3), label."""

    initial: np.ndarray
    frames: np.ndarray
    action: np.ndarray
    solved: bool
    states: list = field(default_factory=list)  # body_states per recorded frame (0: initial)


def frame_with_ball(space: pymunk.Space, action, size: int) -> np.ndarray:
    """The initial scene with the red ball placed (the env's renderer at t=0, no simulation)."""
    placed = space.copy()
    add_action_ball(placed, action)
    return render(placed, size)


def sample_placement(rng: np.random.Generator, space: pymunk.Space, focus_share: float):
    """A valid placement: uniform, or (focus_share of the time) just above the green body."""
    green = next(b for b in space.bodies if any(s.collision_type == GREEN for s in b.shapes))
    while True:
        if rng.random() < focus_share:
            x, y = (np.array(green.position) + [rng.normal(0, 30), abs(rng.normal(20, 40))]) / SCENE
            action = np.array([x, y, rng.uniform()])
        else:
            action = rng.uniform(0.0, 1.0, 3)
        if placement_error(space, action) is None:
            return action


def simulate_episodes(tasks: list[str], count: int, cfg: WorldModelTrainConfig, size: int,
                      seed: int) -> list[Placement]:
    """`count` recorded random placements on puzzles drawn from `tasks`."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in tqdm(range(count), desc="simulate", leave=False):
        space = build_space(parse_task_id(tasks[int(rng.integers(len(tasks)))]))
        action = sample_placement(rng, space, cfg.focus_share)
        outcome = attempt(space, action, record_size=size, frame_stride=cfg.frame_stride)
        episodes.append(Placement(frame_with_ball(space, action, size), outcome.frames[1:],
                                  action, outcome.solved, outcome.states))
    return episodes


def episode_clips(episode: Placement, windows: int, clip_frames: int) -> np.ndarray:
    """(K, T, H, W, 3): the still initial clip, then rollout clips (padded with the last frame)."""
    needed = (windows - 1) * clip_frames
    frames = episode.frames[:needed]
    if len(frames) < needed:
        pad = repeat(frames[-1], "h w c -> n h w c", n=needed - len(frames))
        frames = np.concatenate([frames, pad])
    still = repeat(episode.initial, "h w c -> 1 t h w c", t=clip_frames)
    return np.concatenate([still, frames.reshape(windows - 1, clip_frames, *frames.shape[1:])])


FEATURES = ("encoder", "state")
STATE_COLORS = ("green", "blue", "gray", "red")  # dynamic body roles (static ones never move)
STATE_ORDER = ("red", "green", "blue")  # these bodies take the first slots
STATE_SLOTS = 9  # bodies per window (a square number: the world model's token grid), padded
STATE_DIM = 7 + len(STATE_COLORS)  # present, x, y, vx, vy, sin, cos + role one-hot
WINDOW_FRAMES = 16  # recorded frames per window for state features (the encoders' clip length)
STATE_RENDER_SIZE = 16  # state features record frames only to get the states: keep them small


def state_tokens(bodies: list[dict]) -> np.ndarray:
    """One window's state tokens (STATE_SLOTS, STATE_DIM) from body_states (scene units / 256)."""
    tokens = np.zeros((STATE_SLOTS, STATE_DIM), np.float32)
    ordered = sorted(bodies, key=lambda b: STATE_ORDER.index(b["color"])
                     if b["color"] in STATE_ORDER else len(STATE_ORDER))  # ball, green first
    for slot, body in enumerate(ordered[:STATE_SLOTS]):
        (x, y), (vx, vy), angle = body["position"], body["velocity"], body["angle"]
        tokens[slot, :7] = (1.0, x / SCENE, y / SCENE, vx / SCENE, vy / SCENE, np.sin(angle),
                            np.cos(angle))
        if body["color"] in STATE_COLORS:
            tokens[slot, 7 + STATE_COLORS.index(body["color"])] = 1.0
    return tokens


def placement_state(space: pymunk.Space, action) -> list[dict]:
    """body_states of the initial scene with the red ball placed (nothing simulated)."""
    placed = space.copy()
    add_action_ball(placed, action)
    return body_states(placed)


def state_windows(episodes: list[Placement], windows: int) -> torch.Tensor:
    """State tokens (E K P D): the initial state, then the state at the end of each window."""
    result = []
    for episode in episodes:
        index = [min(k * WINDOW_FRAMES, len(episode.states) - 1) for k in range(windows)]
        result.append(np.stack([state_tokens(episode.states[i]) for i in index]))
    return torch.from_numpy(np.stack(result))


def encode_windows(encoder: FrozenEncoder, clips: np.ndarray, tokens_per_window: int,
                   batch_size: int = 32) -> torch.Tensor:
    """Clips (M, T, H, W, 3) uint8 -> pooled window tokens (M, P, D)."""
    grid = encoder.grid.shape
    return encode_batches(encoder.encode, clip_batches(clips, batch_size),
                          pool=lambda tokens: pool_window(tokens, grid, tokens_per_window))


def episode_windows(encoder: FrozenEncoder, episodes: list[Placement], windows: int,
                    tokens_per_window: int) -> torch.Tensor:
    """Window latents (E K P D) of episodes: the still clip, then K-1 rollout clips."""
    clips = np.stack([episode_clips(e, windows, encoder.grid.frames) for e in episodes])
    latents = encode_windows(encoder, clips.reshape(-1, *clips.shape[2:]), tokens_per_window)
    return latents.reshape(len(episodes), windows, *latents.shape[1:])


def probe_features(model: WorldModel, context: torch.Tensor, horizon: int) -> torch.Tensor:
    """Goal-probe features of rollouts from context windows (B 1 P D) -> (B, horizon*P*D)."""
    with torch.no_grad():
        return model.rollout(context, horizon).flatten(1)


def train_probe(features: torch.Tensor, labels: torch.Tensor, steps: int,
                weight_decay: float, prefix: str = "probe.") -> dict[str, torch.Tensor]:
    """Standardised logistic regression (class-balanced) -> {prefix + mean, std, weight, bias}."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    positive = labels.float().mean().clamp(1e-3, 1 - 1e-3)
    pos_weight = (1 - positive) / positive
    optimizer = torch.optim.Adam([weight, bias], lr=0.01, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(x @ weight + bias, labels.float(),
                                                  pos_weight=pos_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {f"{prefix}mean": mean, f"{prefix}std": std, f"{prefix}weight": weight.detach(),
            f"{prefix}bias": bias.detach()}


def probe_logits(probe: dict[str, torch.Tensor], features: torch.Tensor,
                 prefix: str = "probe.") -> torch.Tensor:
    """Goal-probe logits (B,) of features (B, F)."""
    return ((features - probe[f"{prefix}mean"]) / probe[f"{prefix}std"]) \
        @ probe[f"{prefix}weight"] + probe[f"{prefix}bias"]


FIRST_WINDOW_PROBE = "probe0."  # tensors of the window-0 goal probe (no rollout)


def probe_diagnostics(model: WorldModel, probe: dict[str, torch.Tensor], windows: torch.Tensor,
                      labels: torch.Tensor, fit: slice, check: slice, cfg) -> dict[str, float]:
    """Goal-probe AUROC on `check` episodes, with two reference probes fit on `fit` episodes.

    `first_window`: a probe on window 0 alone (what the placement looks like, no dynamics);
    `true_future`: a probe on the encoded real future windows (a perfect world model's bound).
    """
    horizon = windows.shape[1] - 1
    features = {"rollout": probe_features(model, windows[:, :1], horizon),
                "first_window": windows[:, 0].flatten(1),
                "true_future": windows[:, 1:].flatten(1)}
    metrics = {}
    for name, feature in features.items():
        prefix = FIRST_WINDOW_PROBE if name == "first_window" else "probe."
        fitted = probe if name != "true_future" else train_probe(
            feature[fit], labels[fit], cfg.probe_steps, cfg.probe_weight_decay)
        scores = probe_logits(fitted, feature[check], prefix).numpy()
        metrics[f"probe_auroc_{name}"] = auroc(scores, labels[check].numpy())
    return metrics


def train_stage(config: WorldModelTrainConfig) -> Path:
    """Train the world model and goal probe on the fold's train tasks; save them; print checks.

    Checked on held-out train-task episodes and on `test_episodes` of the fold's test tasks
    (used for these numbers only; nothing is fit or selected on them). Returns the directory.
    """
    validate_tree(config)
    state = config.features == "state"
    encoder = None if state else load_encoder(config.encoder)
    size = STATE_RENDER_SIZE if state else encoder.grid.size
    train_tasks, test_tasks = split_tasks(config.split, config.fold)
    episodes = simulate_episodes(train_tasks, config.episodes, config, size, config.seed)
    test_episodes = simulate_episodes(test_tasks, config.test_episodes, config, size,
                                      config.seed + 1)
    if state:
        config.world_model.latent_dim, config.world_model.tokens_per_window = STATE_DIM, STATE_SLOTS
        windows = state_windows(episodes + test_episodes, config.windows)
    else:
        config.world_model.latent_dim = encoder.embed_dim
        windows = episode_windows(encoder, episodes + test_episodes, config.windows,
                                  config.world_model.tokens_per_window)
    labels = torch.tensor([e.solved for e in episodes + test_episodes])
    held = max(1, int(config.holdout * len(episodes)))
    fit, heldout, test = slice(held, len(episodes)), slice(0, held), slice(len(episodes), None)
    model = train_world_model(config.world_model, windows[fit])
    horizon = config.windows - 1
    probe = train_probe(probe_features(model, windows[fit, :1], horizon), labels[fit],
                        config.probe_steps, config.probe_weight_decay)
    # the ablation's objective (agent.rollout=false): the same probe on window 0 alone
    probe.update(train_probe(windows[fit, 0].flatten(1), labels[fit], config.probe_steps,
                             config.probe_weight_decay, prefix=FIRST_WINDOW_PROBE))
    metrics = {"episodes": len(episodes), "solved_share": float(labels[fit].float().mean())}
    for name, check in (("heldout", heldout), ("test_tasks", test)):
        if check.start < len(windows):
            metrics[name] = {**rollout_errors(model, windows[check]),
                             **probe_diagnostics(model, probe, windows, labels, fit, check,
                                                 config)}
    out = Path(config.out)
    reference = window_errors(model, windows[heldout]).median(0).values.clamp_min(1e-8)
    save_world_model(model, out, {**probe, "horizon": torch.tensor(horizon),
                                  "surprise.reference": reference,
                                  "train.split": torch.tensor(SPLITS.index(config.split)),
                                  "train.fold": torch.tensor(config.fold),
                                  "features": torch.tensor(FEATURES.index(config.features))})
    atomic_write_json(out / METRICS_FILE, {"config": as_dict(config), "metrics": metrics})
    print(json.dumps(metrics, indent=1))
    return out


def trained_tasks(directory: str | Path, extra: dict[str, torch.Tensor]) -> set[str]:
    """Task ids a saved world model and its probe were trained on (the train tasks of its fold)."""
    if "train.split" not in extra or "train.fold" not in extra:
        raise CheckpointError(f"{directory}: no train.split / train.fold (written by an older "
                              "version: retrain it with `ia-world world_model`)")
    return set(split_tasks(SPLITS[int(extra["train.split"])], int(extra["train.fold"]))[0])


def check_zero_shot(directory: str | Path, extra: dict[str, torch.Tensor],
                    tasks: list[str]) -> None:
    """Refuse to test a world model on puzzles it was trained on (a split or fold mismatch)."""
    seen = sorted(trained_tasks(directory, extra).intersection(tasks))
    if seen:
        split, fold = SPLITS[int(extra["train.split"])], int(extra["train.fold"])
        raise ConfigError(f"{directory}: trained on split={split} fold={fold}, whose train tasks "
                          f"include {len(seen)} of the {len(set(tasks))} test puzzles (e.g. "
                          f"{seen[0]}): zero-shot needs a world model of the same split and fold")
