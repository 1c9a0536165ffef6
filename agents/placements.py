"""Placements on PHYRE-Lite puzzles for the world model: sampled (seeded blocks, physics-only
labels, `solved_share` balancing), recorded, and turned into window tokens (encoder latents or
the simulator's body states)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pymunk
import torch
from einops import repeat
from tqdm import tqdm

from agents.world_model_net import pool_window
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
from envs.phyre_lite.templates import parse_task_id
from ia_world.checkpoint import (
    FrozenEncoder,
    clip_batches,
    encode_batches,
)
from ia_world.errors import ConfigError
from ia_world.parallel import ordered_map

if TYPE_CHECKING:
    from agents.world_model import WorldModelTrainConfig


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
