"""`ia-world world_model`: train the latent world model and goal probe on a PHYRE-Lite fold.

Random placements on the fold's FIT tasks only (its train tasks less the `val` puzzles kept for
choosing planner levers: envs/phyre_lite/splits.role_tasks) are simulated; each placement
becomes window latents: window 0 encodes the still initial scene with the red ball (the frame
repeated), windows 1..K-1 encode consecutive clips of the recorded rollout. A block-causal world
model (agents.dynamics) is fit on them and a linear goal probe is fit on the world model's
rollouts from window 0 (label: solved) of other train episodes, never used to fit the dynamics
(`episode_roles`): the probe learns on out-of-sample rollouts, as it is used at test time. The
directory it writes is what `agent=latent` and `ia-world surprise` load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymunk
import torch
import torch.nn.functional as F
from einops import repeat
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
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
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, role_tasks, split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.atomic import atomic_write, atomic_write_json
from ia_world.checkpoint import (
    METRICS_FILE,
    MODEL_FILE,
    FrozenEncoder,
    clip_batches,
    encode_batches,
    load_encoder,
    resolve_checkpoint,
)
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.eval.stats import auroc
from ia_world.parallel import ordered_map


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


MAX_DRAWS_PER_EPISODE = 500  # give up balancing when solving placements are rarer than this
DRAW_BLOCK = 64  # placements per pool task; blocks are used in order, so workers never matter


def draw_block(job: tuple[list[str], float, int, int]) -> list[tuple[str, np.ndarray, bool]]:
    """Block `block` of seed `seed`'s labelled random placements: (task id, action, solved)."""
    tasks, focus_share, seed, block = job
    rng = np.random.default_rng([seed, block])
    drawn = []
    for _ in range(DRAW_BLOCK):
        task = tasks[int(rng.integers(len(tasks)))]
        space = build_space(parse_task_id(task))
        action = sample_placement(rng, space, focus_share)
        drawn.append((task, action, attempt(space, action).solved))
    return drawn


def draw_placements(tasks: list[str], count: int, cfg: WorldModelTrainConfig,
                    seed: int) -> tuple[list[tuple[str, np.ndarray]], float]:
    """`count` (task id, action) placements in random order, and the solved share of all draws.

    Each draw is labelled by a physics-only run (no rendering), `cfg.workers` processes drawing
    blocks of them. With cfg.solved_share > 0 draws go on until round(solved_share * count)
    solved and the rest failed placements are kept; otherwise the first `count` are kept.
    """
    wanted = {True: round(cfg.solved_share * count)}
    wanted[False] = count - wanted[True]
    kept: dict[bool, list] = {True: [], False: []}
    draws = solved = block = 0
    with ordered_map(cfg.workers) as blocks_in_order, \
            tqdm(total=count, desc="draw placements", leave=False) as progress:
        while len(kept[True]) + len(kept[False]) < count:
            jobs = [(tasks, cfg.focus_share, seed, block + i) for i in range(2 * cfg.workers)]
            block += len(jobs)
            drawn = (d for block_draws in blocks_in_order(draw_block, jobs) for d in block_draws)
            for task, action, outcome in drawn:
                if len(kept[True]) + len(kept[False]) == count:
                    break
                if draws == MAX_DRAWS_PER_EPISODE * count:
                    raise ConfigError(f"solved_share={cfg.solved_share}: only {solved} of "
                                      f"{draws} placements solved their puzzle; lower "
                                      "solved_share")
                draws, solved = draws + 1, solved + outcome
                label = outcome and cfg.solved_share > 0
                if len(kept[label]) < wanted[label]:
                    kept[label].append((task, action))
                    progress.update()
    placements = kept[True] + kept[False]
    order = np.random.default_rng(seed).permutation(count) if cfg.solved_share \
        else np.arange(count)
    return [placements[i] for i in order], solved / max(draws, 1)


def record_placement(job: tuple[str, np.ndarray, int, int]) -> Placement:
    """One placement (task id, action) simulated and recorded at `size` px every `stride` steps."""
    task, action, size, frame_stride = job
    space = build_space(parse_task_id(task))
    outcome = attempt(space, action, record_size=size, frame_stride=frame_stride)
    return Placement(frame_with_ball(space, action, size), outcome.frames[1:], action,
                     outcome.solved, outcome.states)


RECORD_CHUNK = 256  # placements recorded (then featurised) at a time: frames never all in RAM


def recorded_chunks(placements: list[tuple[str, np.ndarray]], cfg: WorldModelTrainConfig,
                    size: int) -> Iterator[list[Placement]]:
    """The placements simulated and recorded by `cfg.workers` processes, in order, in chunks."""
    jobs = [(task, action, size, cfg.frame_stride) for task, action in placements]
    with ordered_map(cfg.workers) as record, \
            tqdm(total=len(jobs), desc="simulate", leave=False) as progress:
        for start in range(0, len(jobs), RECORD_CHUNK):
            chunk = list(record(record_placement, jobs[start:start + RECORD_CHUNK]))
            progress.update(len(chunk))
            yield chunk


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


def probe_features(model: WorldModel, context: torch.Tensor, horizon: int,
                   actions: torch.Tensor | None = None) -> torch.Tensor:
    """Goal-probe features of rollouts from context windows (B 1 P D) -> (B, horizon*P*D)."""
    with torch.no_grad():
        return model.rollout(context, horizon, actions).flatten(1)


def first_window_features(first: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
    """Window-0 probe features (B, P*D [+ A]): the first window, and the placement when the world
    model is conditioned on it (so the rollout ablation sees what the world model sees)."""
    features = first.flatten(1)
    return features if actions is None else torch.cat([features, actions], 1)


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


def episode_roles(episodes: int, holdout: float, probe_share: float) -> dict[str, slice]:
    """Disjoint train-episode ranges: `heldout` (checks only), `probe` (fits the goal probes on
    the world model's rollouts, out of sample) and `dynamics` (fits the world model)."""
    held = max(1, int(holdout * episodes))
    probe = held + max(1, int(probe_share * episodes))
    return {"heldout": slice(0, held), "probe": slice(held, probe),
            "dynamics": slice(probe, episodes)}


def fit_goal_probes(model: WorldModel, windows: torch.Tensor, labels: torch.Tensor,
                    actions: torch.Tensor | None, cfg) -> dict[str, torch.Tensor]:
    """The goal probe on rollouts from window 0 of `windows` (E K P D) and the window-0 probe
    (the ablation's objective, prefix FIRST_WINDOW_PROBE) on the same episodes."""
    probe = train_probe(probe_features(model, windows[:, :1], windows.shape[1] - 1, actions),
                        labels, cfg.probe_steps, cfg.probe_weight_decay)
    probe.update(train_probe(first_window_features(windows[:, 0], actions), labels,
                             cfg.probe_steps, cfg.probe_weight_decay, prefix=FIRST_WINDOW_PROBE))
    return probe


def probe_diagnostics(model: WorldModel, probe: dict[str, torch.Tensor], windows: torch.Tensor,
                      labels: torch.Tensor, actions: torch.Tensor | None, fit: slice,
                      check: slice, cfg) -> dict[str, float]:
    """Goal-probe AUROC on `check` episodes, with a reference probe fit on `fit` episodes.

    `first_window`: a probe on window 0 alone (what the placement looks like, no dynamics);
    `true_future`: a probe on the encoded real future windows (a perfect world model's bound).
    """
    horizon = windows.shape[1] - 1
    features = {"rollout": probe_features(model, windows[:, :1], horizon, actions),
                "first_window": first_window_features(windows[:, 0], actions),
                "true_future": windows[:, 1:].flatten(1)}
    metrics = {}
    for name, feature in features.items():
        prefix = FIRST_WINDOW_PROBE if name == "first_window" else "probe."
        fitted = probe if name != "true_future" else train_probe(
            feature[fit], labels[fit], cfg.probe_steps, cfg.probe_weight_decay)
        scores = probe_logits(fitted, feature[check], prefix).numpy()
        metrics[f"probe_auroc_{name}"] = auroc(scores, labels[check].numpy())
    return metrics


CACHE_VERSION = 3  # bump when the windows a config gives change


def window_cache(config: WorldModelTrainConfig) -> Path | None:
    """The cache file of a config's windows: keyed by every key that changes them (for encoder
    features also the encoder's weights file digest), or None without `cache`."""
    if not config.cache:
        return None
    keys = {name: getattr(config, name) for name in (
        "features", "split", "fold", "episodes", "test_episodes", "windows", "frame_stride",
        "focus_share", "solved_share", "seed")}
    keys["version"] = CACHE_VERSION
    if config.features == "encoder":
        with open(resolve_checkpoint(config.encoder) / MODEL_FILE, "rb") as weights:
            keys["encoder"] = hashlib.file_digest(weights, "sha256").hexdigest()
        keys["tokens_per_window"] = config.world_model.tokens_per_window
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
    return Path(config.cache) / f"windows-{digest}.safetensors"


WINDOW_DATA = ("windows", "labels", "actions", "drawn_solved_share")


def read_window_cache(path: Path, episodes: int) -> dict[str, torch.Tensor]:
    """A window cache file, checked; DataError naming the file when it is corrupt."""
    try:
        data = load_file(path)
    except (OSError, SafetensorError) as error:
        raise DataError(f"{path}: corrupt window cache ({error}); delete it".splitlines()[0]) \
            from None
    if sorted(data) != sorted(WINDOW_DATA) or len(data["windows"]) != episodes \
            or len(data["labels"]) != episodes or data["actions"].shape != (episodes, 3):
        raise DataError(f"{path}: window cache does not hold {episodes} episodes' windows, "
                        "labels and actions; delete it")
    return data


def collect_windows(config: WorldModelTrainConfig) -> dict[str, torch.Tensor]:
    """Windows (E K P D), labels (E,), actions (E 3) of the train then the test episodes and the
    drawn solved shares (train, test); read from the cache when it holds them, else simulated
    (and encoded) and cached."""
    cache = window_cache(config)
    total = config.episodes + config.test_episodes
    if cache is not None and cache.is_file():
        return read_window_cache(cache, total)
    state = config.features == "state"
    encoder = None if state else load_encoder(config.encoder)
    size = STATE_RENDER_SIZE if state else encoder.grid.size
    roles = role_tasks(config.split, config.fold)
    train_tasks, test_tasks = roles["fit"], roles["test"]
    windows, labels, actions, shares = [], [], [], []
    for tasks, count, seed in ((train_tasks, config.episodes, config.seed),
                               (test_tasks, config.test_episodes, config.seed + 1)):
        placements, drawn_share = draw_placements(tasks, count, config, seed)
        shares.append(drawn_share)
        for chunk in recorded_chunks(placements, config, size):
            windows.append(state_windows(chunk, config.windows) if state else episode_windows(
                encoder, chunk, config.windows, config.world_model.tokens_per_window))
            labels += [e.solved for e in chunk]
            actions += [e.action for e in chunk]
    data = {"windows": torch.cat(windows).contiguous(), "labels": torch.tensor(labels),
            "actions": torch.tensor(np.stack(actions), dtype=torch.float32),
            "drawn_solved_share": torch.tensor(shares)}
    if cache is not None:
        atomic_write(cache, lambda temp: save_file(data, temp))
    return data


def train_stage(config: WorldModelTrainConfig) -> Path:
    """Train the world model and goal probe on the fold's train tasks; save them; print checks.

    Checked on held-out train-task episodes and on `test_episodes` of the fold's test tasks
    (used for these numbers only; nothing is fit or selected on them). Returns the directory.
    """
    validate_tree(config)
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
    atomic_write_json(out / METRICS_FILE, {"config": as_dict(config), "metrics": metrics})
    print(json.dumps(metrics, indent=1))
    return out


def trained_tasks(directory: str | Path, extra: dict[str, torch.Tensor]) -> set[str]:
    """Task ids a saved world model and its probe were trained on: its fold's fit tasks (all its
    train tasks, val ones included, when written before the val role)."""
    if "train.split" not in extra or "train.fold" not in extra:
        raise CheckpointError(f"{directory}: no train.split / train.fold (written by an older "
                              "version: retrain it with `ia-world world_model`)")
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
