"""Features of one split for every evaluated subject: the encoder and its controls.

Subjects: `encoder` (the checkpoint), `floor` (the same architecture at its initialisation),
`static` (the encoder on each clip's first frame repeated), `pixel` (PCA of downsampled frames
and frame differences, per time step, the basis fitted on the training split) and `ceiling`
(ground-truth per-object state). `density_blind_sets` give the probes a second ceiling: what a
perfect reader of the frames knows without inferring mass (sizes and speeds, no density).
Each subject gives, per clip,
  vector  (E, F)     time-keeping features for the ridge probes (never only a mean over time),
  tokens  (E, M, C)  a token set for the QA head,
  objects (O, G)     one row per dynamic object, for the per-object velocity probe.
Every clip is encoded once per split; all probes and heads reuse these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange, reduce, repeat
from sklearn.decomposition import PCA

from ia_world.checkpoint import FrozenEncoder, clip_batches, encode_batches
from ia_world.data.episode import Episode
from ia_world.tokens import TokenGrid

SUBJECTS = ("encoder", "floor", "static", "pixel", "ceiling")
CONTROLS = ("floor", "static", "pixel", "ceiling")
PIXEL_SIZE = 16          # the pixel control downsamples frames to 16x16 (x3 colours)
PIXEL_COMPONENTS = 64    # PCA components of frames and of frame differences, per time step
PIXEL_FIT_ROWS = 4096    # the PCA bases are fitted on at most this many (clip, step) rows
VELOCITY_FRAMES = 4      # per-object velocity target: mean velocity over the first 4 frames
SUMMARY_COLUMNS = 7      # object_state's summary: speed, speed / K, energies, mass, size, contacts


@dataclass
class Features:
    """One subject's features of one split (see the module docstring)."""

    vector: np.ndarray
    tokens: np.ndarray
    objects: np.ndarray


def dynamic_indices(episode: Episode) -> list[int]:
    """Indices (into objects and the states' K axis) of the episode's dynamic objects."""
    return [i for i, obj in enumerate(episode.objects) if not obj.get("static", False)]


def object_velocities(episode: Episode) -> np.ndarray:
    """Per dynamic object, its mean (vx, vy) over the first VELOCITY_FRAMES frames: (K, 2)."""
    velocity = episode.states["velocity"][:VELOCITY_FRAMES, dynamic_indices(episode), :2]
    return velocity.mean(0)


def object_patches(episode: Episode, grid: TokenGrid) -> list[int]:
    """Token index (time step 0) of each dynamic object's first-frame pixel position."""
    pixels = episode.states["pixel"][0, dynamic_indices(episode)]
    return [grid.token_of(0, x, y) for x, y in pixels]


def token_features(tokens: np.ndarray, grid: TokenGrid) -> np.ndarray:
    """Tokens (E, N, D) -> (E, 2D): mean over all tokens and mean |z(t+1) - z(t)| over time."""
    t, h, w = grid.shape
    volume = rearrange(tokens, "e (t p) d -> e t p d", t=t, p=h * w)
    motion = reduce(np.abs(np.diff(volume, axis=1)), "e t p d -> e d", "mean")
    return np.concatenate([reduce(volume, "e t p d -> e d", "mean"), motion], -1)


def token_objects(tokens: np.ndarray, episodes: list[Episode], grid: TokenGrid) -> np.ndarray:
    """Per dynamic object, the tokens of its first-frame patch at time steps 0 and 1: (O, 2D)."""
    step = grid.shape[1] * grid.shape[2]
    return np.stack([np.concatenate([tokens[e, p], tokens[e, p + step]])
                     for e, ep in enumerate(episodes) for p in object_patches(ep, grid)])


def qa_tokens(tokens: np.ndarray, grid: TokenGrid) -> np.ndarray:
    """Tokens (E, N, D) average-pooled 2x2x2 in time and space for the QA head: (E, N/8, D)."""
    t, h, w = grid.shape
    c = 2 if t % 2 == 0 else 1
    return reduce(tokens, "e (t c h a w b) d -> e (t h w) d", "mean", t=t // c, c=c, h=h // 2,
                  a=2, w=w // 2, b=2)


def encoder_features(encoder: FrozenEncoder, clips: np.ndarray, episodes: list[Episode],
                     batch_size: int, desc: str) -> Features:
    """Encode clips (E, T, H, W, 3) once; every feature of an encoder-like subject."""
    tokens = encode_batches(encoder.encode, clip_batches(clips, batch_size), desc=desc,
                            total=-(-len(clips) // batch_size)).cpu().numpy()   # E N D
    grid = encoder.grid
    return Features(token_features(tokens, grid), qa_tokens(tokens, grid),
                    token_objects(tokens, episodes, grid))


def pixel_steps(clips: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips (E, T, H, W, 3) -> frames and absolute frame differences (motion energy, which a
    linear probe can read), each averaged over PIXEL_SIZE x PIXEL_SIZE cells and into `steps`
    time steps: two (E, steps, PIXEL_SIZE^2 * 3) arrays in [0, 1]."""
    cell = clips.shape[2] // PIXEL_SIZE
    frames, motion = [], []
    for chunk in np.array_split(clips, max(1, len(clips) // 128)):             # bounded memory
        x = chunk.astype(np.float32) / 255                                        # e T H W 3
        diffs = np.abs(np.diff(x, axis=1, prepend=x[:, :1]))
        frames.append(reduce(x, "e (s k) (h a) (w b) c -> e s (h w c)", "mean", s=steps,
                             a=cell, b=cell))
        motion.append(reduce(diffs, "e (s k) (h a) (w b) c -> e s (h w c)", "mean", s=steps,
                             a=cell, b=cell))
    return np.concatenate(frames), np.concatenate(motion)


def motion_summary(clips: np.ndarray) -> np.ndarray:
    """Mean |frame(t+1) - frame(t)| over the whole frame, per frame pair: (E, T-1)."""
    return np.stack([np.abs(np.diff(clip.astype(np.float32), axis=0)).mean((1, 2, 3))
                     for clip in clips])


def fit_pixel_basis(clips: np.ndarray, steps: int, seed: int = 0) -> tuple[PCA, PCA]:
    """PCA bases of downsampled frames and of frame differences, fitted on a training split."""
    bases, rng = [], np.random.default_rng(seed)
    for x in pixel_steps(clips, steps):
        rows = rearrange(x, "e s p -> (e s) p")
        if len(rows) > PIXEL_FIT_ROWS:
            rows = rows[np.sort(rng.choice(len(rows), PIXEL_FIT_ROWS, replace=False))]
        components = min(PIXEL_COMPONENTS, rows.shape[1], len(rows) // 4)  # well estimated
        bases.append(PCA(components, random_state=seed).fit(rows))
    return tuple(bases)


def pixel_features(clips: np.ndarray, episodes: list[Episode], grid: TokenGrid,
                   basis: tuple[PCA, PCA]) -> Features:
    """Pixel control: per time step, PCA of the downsampled frame and of its absolute difference
    to the previous one (space and time kept), plus the whole-frame motion per frame pair; per
    object, its first-frame patch's differences."""
    steps = grid.shape[0]
    projected = [rearrange(pca.transform(rearrange(x, "e s p -> (e s) p")),
                           "(e s) c -> e s c", s=steps)
                 for pca, x in zip(basis, pixel_steps(clips, steps))]
    tokens = np.concatenate(projected, -1)                                       # E S 2C
    diffs = np.abs(np.diff(clips[:, :VELOCITY_FRAMES + 1].astype(np.float32), axis=1)).mean(-1)
    patch = grid.patch
    objects = []
    for e, ep in enumerate(episodes):
        for x, y in ep.states["pixel"][0, dynamic_indices(ep)]:
            row, col = int(y // patch) * patch, int(x // patch) * patch
            objects.append(diffs[e, :, row:row + patch, col:col + patch].mean((-1, -2)))
    vector = np.concatenate([rearrange(tokens, "e s c -> e (s c)"), motion_summary(clips)], -1)
    return Features(vector, tokens, np.stack(objects))


def attribute_vocab(episodes: list[Episode]) -> dict[str, list[str]]:
    """Sorted colours and materials of the dynamic objects (the ceiling's one-hot order)."""
    objects = [ep.objects[i] for ep in episodes for i in dynamic_indices(ep)]
    return {key: sorted({obj[key] for obj in objects}) for key in ("color", "material")}


def object_state(episode: Episode, num_frames: int, vocab: dict[str, list[str]]) -> np.ndarray:
    """Ground-truth rows (K, S) per dynamic object: attributes, energies, trajectory, contacts."""
    index = dynamic_indices(episode)
    position = episode.states["position"][:num_frames, index, :2]            # T K 2
    velocity = episode.states["velocity"][:num_frames, index, :2]
    spin = episode.states["angular_velocity"][:num_frames, index, 2]        # T K
    mass = np.array([episode.objects[i]["mass"] for i in index])
    size = np.array([episode.objects[i]["size"] for i in index])
    speed = np.linalg.norm(velocity, axis=-1)                               # T K
    ids = [episode.objects[i]["id"] for i in index]
    contacts = np.zeros((num_frames, len(index)))
    for c in episode.collisions:
        for obj in c["object_ids"]:
            if c["frame"] < num_frames and obj in ids and set(c["object_ids"]) <= set(ids):
                contacts[c["frame"], ids.index(obj)] += 1
    onehots = [np.array([[episode.objects[i][key] == v for v in vocab[key]] for i in index],
                        float) for key in ("color", "material")]
    summary = np.stack([speed.mean(0), speed.mean(0) / len(index),
                        0.5 * mass * (speed ** 2).mean(0),
                        0.25 * mass * size ** 2 * (spin ** 2).mean(0),
                        mass, size, contacts.sum(0)], -1)                   # K 7
    trajectory = rearrange(np.concatenate([position, velocity, np.cumsum(contacts, 0)[..., None]],
                                          -1), "t k s -> k (t s)")
    return np.concatenate([*onehots, summary, trajectory], -1)


def ceiling_features(episodes: list[Episode], num_frames: int, vocab: dict[str, list[str]],
                     max_objects: int) -> Features:
    """Ceiling: per-object ground-truth state; QA tokens in id order, zero-padded to
    max_objects; probe vector = sum and max over the objects of their summaries."""
    states = [object_state(ep, num_frames, vocab) for ep in episodes]
    padded = np.zeros((len(states), max_objects, states[0].shape[1]))
    for e, state in enumerate(states):
        padded[e, :len(state)] = state
    start = sum(len(v) for v in vocab.values())
    summaries = [state[:, start:start + SUMMARY_COLUMNS] for state in states]     # K 7 each
    vector = np.stack([np.concatenate([s.sum(0), s.max(0)]) for s in summaries])  # E 14
    initial = [np.concatenate([object_velocities(ep), s[:, 4:6]], -1)             # mass, size
               for ep, s in zip(episodes, summaries)]
    return Features(vector, padded, np.concatenate(initial))


def density_blind_sets(episodes: list[Episode], num_frames: int) -> dict[str, np.ndarray]:
    """Feature sets (E, F) a perfect reader of the frames has without inferring density:
    per ball its size r and speed v, summed over the balls as r^2 v^2, v^2 and r^2, taken at
    the first frame, averaged over the clip, or both."""
    first, averaged = [], []
    for ep in episodes:
        index = dynamic_indices(ep)
        speed_sq = np.linalg.norm(ep.states["velocity"][:num_frames, index, :2], axis=-1) ** 2
        size_sq = np.array([ep.objects[i]["size"] for i in index]) ** 2          # K
        for rows, speed in ((first, speed_sq[0]), (averaged, speed_sq.mean(0))):
            rows.append([(size_sq * speed).sum(), speed.sum(), size_sq.sum()])
    first, averaged = np.array(first), np.array(averaged)
    return {"first frame": first, "time-averaged": averaged,
            "both": np.concatenate([first, averaged], 1)}


def static_clips(clips: np.ndarray) -> np.ndarray:
    """Each clip's first frame repeated over the clip: (E, T, H, W, 3)."""
    return repeat(clips[:, 0], "e h w c -> e t h w c", t=clips.shape[1])


def split_clips(episodes: list[Episode], grid: TokenGrid) -> np.ndarray:
    """The split's clips: each episode's first grid.frames frames, (E, T, H, W, 3) uint8."""
    return np.stack([ep.frames[:grid.frames] for ep in episodes])


def split_features(encoders: dict[str, FrozenEncoder], episodes: list[Episode],
                   clips: np.ndarray, vocab: dict[str, list[str]], max_objects: int,
                   batch_size: int, name: str, pixel_basis: tuple[PCA, PCA]
                   ) -> dict[str, Features]:
    """Every subject's features of one split; encoders = {"encoder": ..., "floor": ...};
    clips = split_clips(episodes) (E, T, H, W, 3); pixel_basis from fit_pixel_basis on the
    training split of the pair."""
    grid = encoders["encoder"].grid
    with torch.no_grad():
        features = {
            "encoder": encoder_features(encoders["encoder"], clips, episodes, batch_size,
                                        f"encode {name}"),
            "floor": encoder_features(encoders["floor"], clips, episodes, batch_size,
                                      f"encode {name} (floor)"),
            "static": encoder_features(encoders["encoder"], static_clips(clips), episodes,
                                       batch_size, f"encode {name} (static)")}
    features["pixel"] = pixel_features(clips, episodes, grid, pixel_basis)
    features["ceiling"] = ceiling_features(episodes, grid.frames, vocab, max_objects)
    return features
