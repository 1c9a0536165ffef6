"""Collision probe: does an encoder infer mass from momentum transfer?

The split: Billiards clips (`ia_world/Billiards-v0`, elastic, frictionless, no gravity) with
exactly two balls and exactly one ball-ball collision inside the clip, no wall contact anywhere
in the clip (so momentum is conserved across the collision and each ball moves at a constant
velocity before and after it), and at least `margin` frames before and after the collision.
Billiards draws each ball's density independently of its size and colour, so a ball's mass is
visible only through the collision. Scenes are rejection-sampled: candidate k of a split has
seed `episode_seed(base_seed, k)`, simulated without rendering; accepted ones are rendered.

Targets, balls ordered left to right in the first frame:
  mass_ratio     |log(m_a / m_b)| from the whole clip (the collision is in it);
  post_velocity  (v_a', v_b') (4 numbers, their constant post-collision velocities) given the
                 pre-collision frames only: every subject but the ceilings sees the clip with
                 the frames from the collision on replaced by the last pre-collision frame.
Subjects (one ridge probe each, `fit_probe`, R^2 with a bootstrap CI over held-out clips):
encoder, floor, static (first frame repeated), pixel (features.pixel_features), density_blind
(exact sizes and pre-collision velocities, no masses) and ceiling (ground truth with masses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ia_world.checkpoint import FrozenEncoder
from ia_world.config import check_range
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.shards import episode_seed
from ia_world.errors import ConfigError, DataError
from ia_world.eval.features import (
    dynamic_indices,
    encoder_features,
    fit_pixel_basis,
    pixel_features,
    split_clips,
    static_clips,
)
from ia_world.eval.probe import fit_probe

COLLISION_ENV = "ia_world/Billiards-v0"
COLLISION_KWARGS = {"num_balls": (2, 2)}
COLLISION_TARGETS = ("mass_ratio", "post_velocity")
COLLISION_SUBJECTS = ("encoder", "floor", "static", "pixel", "density_blind", "ceiling")
MOMENTUM_TOLERANCE = 1e-3  # relative change of total momentum across the collision, at most


@dataclass
class CollisionProbeConfig:
    """The collision probe's splits: clip counts, base seeds and the pre/post frame margin."""

    enabled: bool = True  # run the probe inside `evaluate`
    train_episodes: int = 256  # accepted clips of the probe-fitting split
    heldout_episodes: int = 128  # accepted clips of the held-out split
    train_seed: int = 9301  # base seed of the probe-fitting split (held-out: the role's seeds)
    margin: int | None = None  # frames before the collision, and from it on, at least
    # (None: a quarter of the clip, 4 of 16 frames)
    max_tries: int = 20  # candidate scenes per requested clip before DataError (~37% accepted)

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        check_range("train_episodes", self.train_episodes, 4, 10**6)
        check_range("heldout_episodes", self.heldout_episodes, 2, 10**6)
        if self.margin is not None:
            check_range("margin", self.margin, 1, 10**4)
        check_range("max_tries", self.max_tries, 1, 10**4)


@dataclass
class CollisionClip:
    """One clip of the split: its episode, collision frame and ball order."""

    episode: Episode
    frame: int  # first post-collision frame: frames < frame are before the collision
    balls: list[int]  # state indices of the two balls, leftmost (first frame) first


def collision_frame(episode: Episode, margin: int) -> int | None:
    """The clip's first post-collision frame if it qualifies (two balls, one ball-ball collision,
    no wall contact, `margin` frames on each side, momentum conserved), else None."""
    balls = dynamic_indices(episode)
    if len(balls) != 2:
        return None
    ids = sorted(episode.objects[i]["id"] for i in balls)
    pair = [c for c in episode.collisions if sorted(c["object_ids"]) == ids]
    if len(pair) != 1 or len(episode.collisions) != 1:
        return None
    frame = int(pair[0]["frame"])
    if frame < margin or len(episode.states["velocity"]) - frame < margin:  # frames: maybe 1
        return None
    mass = np.array([episode.objects[i]["mass"] for i in balls])
    velocity = episode.states["velocity"][:, balls, :2]                      # T 2 2
    momentum = np.einsum("k,tkd->td", mass, velocity)                        # T 2
    scale = np.abs(mass[:, None] * velocity[0]).sum()
    if np.abs(momentum - momentum[0]).max() > MOMENTUM_TOLERANCE * scale:
        return None
    return frame


def check_collision_clip(clip: CollisionClip, margin: int) -> None:
    """DataError unless the clip still qualifies (see collision_frame) at its recorded frame."""
    frame = collision_frame(clip.episode, margin)
    if frame != clip.frame:
        raise DataError(f"collision split: episode seed {clip.episode.meta['seed']} does not "
                        f"hold one ball-ball collision with {margin} frames on each side")


def collision_split(count: int, base_seed: int, frames: int, size: int, margin: int,
                    max_tries: int = 20, desc: str = "collision split",
                    render: bool = True) -> list[CollisionClip]:
    """`count` qualifying clips: candidates episode_seed(base_seed, k), k = 0, 1, ... in order
    (render=False: ground truth only, each episode's frames just its first frame)."""
    if not 1 <= margin <= frames // 2:
        raise ConfigError(f"collision margin={margin}: needs 1 <= margin <= frames / 2 "
                          f"(frames={frames})")
    env = make_env(COLLISION_ENV, size=size, **COLLISION_KWARGS)
    clips: list[CollisionClip] = []
    with tqdm(total=count, desc=f"{desc} (seed {base_seed})", leave=False) as progress:
        for k in range(count * max_tries):
            seed = episode_seed(base_seed, k)
            episode = simulate_episode(env, seed, frames, render=False)
            if collision_frame(episode, margin) is None:
                continue
            if render:
                episode = simulate_episode(env, seed, frames)
            balls = sorted(dynamic_indices(episode),
                           key=lambda i: episode.states["position"][0, i, 0])
            clips.append(CollisionClip(episode, collision_frame(episode, margin), balls))
            progress.update()
            if len(clips) == count:
                return clips
    raise DataError(f"collision split (seed {base_seed}): {len(clips)} of {count} clips after "
                    f"{count * max_tries} candidate scenes; lower `margin` or raise `max_tries`")


def collision_splits(cfg: CollisionProbeConfig, heldout_seed: int, frames: int, size: int
                     ) -> dict[str, list[CollisionClip]]:
    """The probe's training and held-out splits at the encoder's clip length and frame size
    (heldout_seed: the split role's, ia_world/eval/splits.py)."""
    margin = max(1, frames // 4) if cfg.margin is None else cfg.margin
    return {name: collision_split(count, seed, frames, size, margin, cfg.max_tries,
                                  f"collision {name}")
            for name, count, seed in (("train", cfg.train_episodes, cfg.train_seed),
                                      ("held-out", cfg.heldout_episodes, heldout_seed))}


def split_seeds(clips: list[CollisionClip]) -> set[int]:
    """Episode seeds of a split's clips (for evaluate's check_disjoint)."""
    return {clip.episode.meta["seed"] for clip in clips}


def velocities(clip: CollisionClip) -> tuple[np.ndarray, np.ndarray]:
    """Pre- and post-collision velocities (2, 2) of the ordered balls (means over the frames)."""
    velocity = clip.episode.states["velocity"][:, clip.balls, :2]           # T 2 2
    return velocity[:clip.frame].mean(0), velocity[clip.frame:].mean(0)


def ball_property(clip: CollisionClip, key: str) -> np.ndarray:
    """An object record's value (e.g. "mass", "radius") of the ordered balls: (2,)."""
    return np.array([clip.episode.objects[i][key] for i in clip.balls], float)


def contact_normal(clip: CollisionClip) -> np.ndarray:
    """Unit vector (2,) from ball a to ball b at contact: the line of centres at the first
    physics step after the last pre-collision frame at which the balls overlap (Pymunk
    detects contacts at its discrete steps), moving at their constant pre-collision velocities."""
    meta = clip.episode.meta
    position = clip.episode.states["position"][clip.frame - 1, clip.balls, :2]   # 2 2
    pre, _ = velocities(clip)
    steps = np.arange(1, meta["frame_skip"] + 1)[:, None] * meta["physics_dt"]   # S 1
    gaps = position[1] - position[0] + steps * (pre[1] - pre[0])                 # S 2
    distance = np.linalg.norm(gaps, axis=-1)
    overlap = np.flatnonzero(distance < ball_property(clip, "radius").sum())
    gap = gaps[overlap[0] if len(overlap) else distance.argmin()]
    return gap / np.linalg.norm(gap)


def impulse_terms(pre: np.ndarray, normal: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Elastic-collision velocity changes (4,) of balls a, b with mass weights `weight` (2,):
    dv_a = -2 w_b / (w_a + w_b) ((v_a - v_b) . n) n, dv_b = +2 w_a / (w_a + w_b) (...)."""
    closing = (pre[0] - pre[1]) @ normal * normal                           # 2
    share = 2 * weight[::-1] / weight.sum()
    return np.concatenate([-share[0] * closing, share[1] * closing])


def collision_targets(clips: list[CollisionClip]) -> dict[str, np.ndarray]:
    """mass_ratio (E,) = |log(m_a / m_b)|; post_velocity (E, 4) = (v_a', v_b')."""
    mass = np.stack([ball_property(c, "mass") for c in clips])              # E 2
    return {"mass_ratio": np.abs(np.log(mass[:, 0] / mass[:, 1])),
            "post_velocity": np.stack([velocities(c)[1].ravel() for c in clips])}


def density_blind_features(clips: list[CollisionClip]) -> np.ndarray:
    """Exact sizes and pre-collision velocities, no masses: (E, 15).

    Radii, the log radius ratio, its absolute value and square (linear in these the probe
    reaches about the best any density-blind guess of |log(m_a / m_b)| can, R^2 ~0.20 under
    Billiards' priors: docs/results/collision-probe.md), pre-collision velocities, the closing
    velocity along the contact normal and the velocity changes an elastic collision gives if
    both balls had the same density (mass ~ r^2): the best density-blind guess, made linear.
    """
    rows = []
    for clip in clips:
        radius = ball_property(clip, "radius")
        pre, _ = velocities(clip)
        normal = contact_normal(clip)
        ratio = np.log(radius[0] / radius[1])
        rows.append(np.concatenate([radius, [ratio, abs(ratio), ratio ** 2], pre.ravel(),
                                    (pre[0] - pre[1]) @ normal * normal,
                                    impulse_terms(pre, normal, radius ** 2)]))
    return np.stack(rows)


def ceiling_features(clips: list[CollisionClip]) -> dict[str, np.ndarray]:
    """Ground truth with masses, per target: (E, F).

    mass_ratio: pre- and post-collision velocities, log |dv| per ball and |log|dv_a| -
    log|dv_b||, which momentum conservation (m_a dv_a = -m_b dv_b) makes |log(m_a / m_b)|.
    post_velocity: the pre-collision state (radii, masses, velocities) and the elastic
    velocity changes along the contact normal with the true masses.
    """
    ratio_rows, post_rows = [], []
    for clip in clips:
        pre, post = velocities(clip)
        change = np.log(np.linalg.norm(post - pre, axis=-1))                 # 2
        ratio_rows.append(np.concatenate([pre.ravel(), post.ravel(), change,
                                          [abs(change[0] - change[1])]]))
        mass = ball_property(clip, "mass")
        post_rows.append(np.concatenate([ball_property(clip, "radius"), mass, pre.ravel(),
                                         impulse_terms(pre, contact_normal(clip), mass)]))
    return {"mass_ratio": np.stack(ratio_rows), "post_velocity": np.stack(post_rows)}


def pre_collision_clips(clips: list[CollisionClip], frames: int) -> np.ndarray:
    """Clips (E, T, H, W, 3) with every frame from the collision on replaced by the last
    pre-collision frame: what the subjects see for the post_velocity target."""
    out = np.stack([clip.episode.frames[:frames] for clip in clips])
    for e, clip in enumerate(clips):
        out[e, clip.frame:] = out[e, clip.frame - 1]
    return out


def subject_features(encoders: dict[str, FrozenEncoder], clips: list[CollisionClip],
                     batch_size: int, name: str, pixel_basis: tuple
                     ) -> dict[str, dict[str, np.ndarray]]:
    """target -> subject -> probe features (E, F) of one split (pixel_basis: fit_pixel_basis
    on the training split's clips)."""
    grid = encoders["encoder"].grid
    episodes = [clip.episode for clip in clips]
    full = split_clips(episodes, grid)                                       # E T H W 3
    seen = {"mass_ratio": full, "post_velocity": pre_collision_clips(clips, grid.frames)}
    ceiling = ceiling_features(clips)
    blind = density_blind_features(clips)
    with torch.no_grad():
        static = encoder_features(encoders["encoder"], static_clips(full), episodes,
                                  batch_size, f"encode {name} (static)").vector
        out = {}
        for target, video in seen.items():
            out[target] = {
                subject: encoder_features(encoders[subject], video, episodes, batch_size,
                                          f"encode {name} {target} ({subject})").vector
                for subject in ("encoder", "floor")}
            pixel = pixel_features(video, episodes, grid, pixel_basis).vector
            out[target].update(static=static, pixel=pixel,
                               density_blind=blind, ceiling=ceiling[target])
    return out


def collision_probe(encoders: dict[str, FrozenEncoder], splits: dict[str, list[CollisionClip]],
                    seed: int = 0, batch_size: int = 32) -> dict[str, dict[str, dict]]:
    """target -> subject -> fit_probe result on the held-out split; encoders = {"encoder": ...,
    "floor": ...}, splits from collision_splits."""
    grid = encoders["encoder"].grid
    basis = fit_pixel_basis(split_clips([clip.episode for clip in splits["train"]], grid),
                            grid.shape[0], seed)
    train = subject_features(encoders, splits["train"], batch_size, "collision train", basis)
    heldout = subject_features(encoders, splits["held-out"], batch_size, "collision held-out",
                               basis)
    train_y, heldout_y = collision_targets(splits["train"]), collision_targets(splits["held-out"])
    return {target: {subject: fit_probe(train[target][subject], train_y[target],
                                        heldout[target][subject], heldout_y[target], seed=seed)
                     for subject in COLLISION_SUBJECTS}
            for target in COLLISION_TARGETS}
