"""The frozen IA-JEPA encoder for RL: an SB3 features extractor and a Gymnasium latent wrapper.

Frame stacks shorter than the encoder's clip length T are stretched in time: stacked frame k of
K (oldest first) fills clip frames [k T / K, (k + 1) T / K), so K = 4 and T = 16 repeat each
frame 4 times; stacks longer than T keep their last T frames.

The encoder is frozen, so an observation's features never change: both the extractor and the
wrapper keep the latents of recently seen observations (`LatentCache`, keyed by a digest of the
uint8 frames), and PPO's update epochs reuse the latents computed during the rollout.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from einops import rearrange
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from ia_world.checkpoint import FrozenEncoder, clip_batches, encode_batches, load_encoder
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.models.attentive_pool import AttentivePool

POOLS = ("mean", "attentive")


def check_frame_size(encoder: FrozenEncoder, checkpoint: str | Path, height: int,
                     width: int) -> None:
    """CheckpointError unless the env's frames have the checkpoint's frame size."""
    size = encoder.grid.size
    if (height, width) != (size, size):
        raise CheckpointError(f"{checkpoint}: encodes {size}x{size} frames but the env's "
                              f"observations are {height}x{width}; render the env at size={size}")


def stretch_to_clip(frames: torch.Tensor, clip_frames: int) -> torch.Tensor:
    """(B, K, H, W, 3) stacked frames -> (B, clip_frames, H, W, 3), stretched or cut in time."""
    stacked = frames.shape[1]
    if stacked >= clip_frames:
        return frames[:, stacked - clip_frames:]
    index = torch.arange(clip_frames, device=frames.device) * stacked // clip_frames
    return frames[:, index]


class LatentCache:
    """An LRU map from uint8 frames to their frozen latents: `lookup(frames, compute)` computes
    only the rows not seen among the last `size` distinct ones, in one call."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def key(frames: np.ndarray) -> bytes:
        """A 16-byte digest of one observation's uint8 frames (its shape included)."""
        digest = hashlib.blake2b(repr(frames.shape).encode(), digest_size=16)
        digest.update(np.ascontiguousarray(frames).data)
        return digest.digest()

    def lookup(self, frames: torch.Tensor, compute) -> torch.Tensor:
        """Latents (B, ...) of uint8 frames (B, ...): cached rows, and compute(frames[missing])."""
        if self.size == 0:
            return compute(frames)
        keys = [self.key(row) for row in frames.cpu().numpy()]
        missing: dict[bytes, int] = {}  # key -> its first row
        for i, key in enumerate(keys):
            if key not in self.entries:
                missing.setdefault(key, i)
        if missing:
            for key, value in zip(missing, compute(frames[list(missing.values())])):
                self.entries[key] = value
        out = torch.stack([self.entries[key] for key in keys])
        for key in keys:
            self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return out


def window_tokens(encoder: FrozenEncoder, window: int) -> torch.Tensor | None:
    """Token indices (M,) of the last `window` token time steps of a clip (None: all N)."""
    steps, height, width = encoder.grid.shape
    if window == 0 or window == steps:
        return None
    if not 1 <= window <= steps:
        raise ConfigError(f"window={window}: the encoder's clips have {steps} token time steps "
                          f"(use 0 for all, or 1..{steps})")
    return torch.arange((steps - window) * height * width, steps * height * width)


class IAJEPAExtractor(BaseFeaturesExtractor):
    """SB3 features extractor: frame-stacked image observations -> pooled frozen IA-JEPA latents.

    Accepts SB3's image conventions: (3K, H, W) channel-first (after VecTransposeImage) or
    (H, W, 3K) channel-last, K frames stacked along channels oldest first (VecFrameStack), as
    floats in [0, 1] (`normalized_images=True`, SB3's default preprocessing) or in [0, 255].
    The encoder never trains (inference mode, eval mode whatever `.train()` says); with
    `pool="attentive"` the pooling head is trainable. features_dim = the encoder's embed_dim.
    The whole vectorised batch is encoded in one call. `window` > 0 encodes only the tokens of
    the last `window` token time steps (the current step's view: with tubelet_t=2 and a 16-frame
    clip, window=1 is 64 of 512 tokens). `cache_size` > 0 keeps the frozen latents of the last
    `cache_size` distinct observations, so PPO's update epochs do not encode again.
    """

    def __init__(self, observation_space: spaces.Box, checkpoint: str | Path,
                 pool: str = "mean", normalized_images: bool = True, device: str = "cpu",
                 window: int = 0, cache_size: int = 4096):
        if pool not in POOLS:
            raise ConfigError(f"IAJEPAExtractor: pool must be one of {POOLS}, got {pool!r}")
        encoder = load_encoder(checkpoint, device=device)
        super().__init__(observation_space, features_dim=encoder.embed_dim)
        self.channels_first = is_image_space_channels_first(observation_space)
        channels, height, width = (observation_space.shape if self.channels_first else
                                   np.roll(observation_space.shape, 1))
        if channels % 3:
            raise ConfigError(f"IAJEPAExtractor: observations need 3K RGB channels, got "
                              f"{tuple(observation_space.shape)}")
        check_frame_size(encoder, checkpoint, int(height), int(width))
        self.encoder = encoder
        self.pool = AttentivePool(encoder.embed_dim) if pool == "attentive" else None
        self.pixel_scale = 255.0 if normalized_images else 1.0
        self.keep = window_tokens(encoder, window)
        self.cache = LatentCache(cache_size)

    def frames(self, observations: torch.Tensor) -> torch.Tensor:
        """SB3 observations (B, 3K, H, W) or (B, H, W, 3K) -> uint8 stacks (B, K, H, W, 3);
        DataError on a non-finite observation (rounding would hide it in finite features)."""
        if observations.is_floating_point() and not torch.isfinite(observations).all():
            raise DataError("IAJEPAExtractor: non-finite (NaN or inf) observation values; the "
                            "env or a wrapper produced them")
        pattern = "b (k c) h w -> b k h w c" if self.channels_first else "b h w (k c) -> b k h w c"
        frames = rearrange(observations, pattern, c=3)
        return (frames * self.pixel_scale).round_().clamp_(0, 255).to(torch.uint8)

    def clips(self, observations: torch.Tensor) -> torch.Tensor:
        """SB3 observations (B, 3K, H, W) or (B, H, W, 3K) -> uint8 clips (B, T, H, W, 3)."""
        return stretch_to_clip(self.frames(observations), self.encoder.grid.frames)

    def frozen_latents(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 stacks (B, K, H, W, 3) -> the frozen encoder's part: pooled (B, D) with
        pool="mean", else the (window's) tokens (B, M, D); one encoder call, inference mode."""
        with torch.inference_mode():
            clips = stretch_to_clip(frames, self.encoder.grid.frames)
            keep = None if self.keep is None else self.keep.expand(len(clips), -1)
            tokens = self.encoder.encode(clips, keep)  # B M D
            latents = tokens.mean(1) if self.pool is None else tokens
        return latents.clone()  # a normal tensor: the trainable head may save it for backward

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Pooled latents (B, D)."""
        latents = self.cache.lookup(self.frames(observations), self.frozen_latents)
        latents = latents.to(observations.device)
        return latents if self.pool is None else self.pool(latents)[:, 0]


class LatentObservation(gym.ObservationWrapper):
    """Gymnasium wrapper: frame observations (H, W, 3) -> frozen IA-JEPA latents of the last T
    frames (the first frame repeated at reset), mean-pooled (D,) or all tokens (N, D).

    `latents(clips)` encodes any number of clips in batches of `batch_size`; latents of recently
    seen clips come from an LRU cache of `cache_size` entries (`LatentCache`).
    """

    def __init__(self, env: gym.Env, checkpoint: str | Path, pool: bool = True,
                 batch_size: int = 64, cache_size: int = 1024, device: str = "cpu"):
        super().__init__(env)
        self.encoder = load_encoder(checkpoint, device=device)
        height, width = env.observation_space.shape[:2]
        check_frame_size(self.encoder, checkpoint, int(height), int(width))
        grid = self.encoder.grid
        shape = (grid.num_tokens, self.encoder.embed_dim)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape[1:] if pool else shape,
                                            np.float32)
        self.pool, self.batch_size = pool, batch_size
        self.history: deque[np.ndarray] = deque(maxlen=grid.frames)
        self.cache = LatentCache(cache_size)

    def reset(self, **kwargs):
        """Reset the env and the frame history."""
        self.history.clear()
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Latents of the clip ending with this frame."""
        if not self.history:
            self.history.extend([observation] * self.history.maxlen)
        else:
            self.history.append(observation)
        return self.latents(np.stack(self.history)[None])[0]

    def latents(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (B, T, H, W, 3) -> float32 latents (B, D) pooled or (B, N, D), cached."""
        def encode(missing: torch.Tensor) -> torch.Tensor:
            return encode_batches(self.encoder.encode,
                                  clip_batches(missing.numpy(), self.batch_size),
                                  pool=(lambda tokens: tokens.mean(1)) if self.pool else None)

        return self.cache.lookup(torch.from_numpy(np.asarray(clips)), encode).numpy().astype(
            np.float32)
