"""Clip datasets: fixed-length, strided clips of episodes with their aligned energy."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ia_world.data.episode import Episode
from ia_world.errors import DataError


def clip_of_episode(episode: Episode, start: int, num_frames: int, frame_stride: int,
                    index: int) -> dict:
    """The clip of `num_frames` frames every `frame_stride` from `start`, as a training dict.

    {"frames": uint8 (T, H, W, 3), "energy_total": (T,), "energy_kinetic": (T,),
    "episode": index, "start": start}; energy is NaN where the episode has none.
    """
    span = (num_frames - 1) * frame_stride + 1
    if start < 0 or start + span > episode.num_frames:
        raise DataError(f"episode {index}: a clip of {span} frames from frame {start} does not "
                        f"fit in its {episode.num_frames} frames")
    frames = slice(start, start + span, frame_stride)
    energy = episode.energy or {}
    nan = np.full(num_frames, np.nan, np.float32)
    return {
        "frames": torch.from_numpy(np.ascontiguousarray(episode.frames[frames])),
        "energy_total": torch.from_numpy(energy["total"][frames].astype(np.float32)
                                         if "total" in energy else nan),
        "energy_kinetic": torch.from_numpy(energy["kinetic"][frames].astype(np.float32)
                                           if "kinetic" in energy else nan),
        "episode": index,
        "start": start,
    }


def clip_starts(episode_frames: int, span: int, clips_per_episode: int) -> list[int]:
    """Evenly spaced first frames of `clips_per_episode` clips of `span` frames."""
    last = episode_frames - span
    if clips_per_episode == 1 or last <= 0:
        return [max(last, 0) // 2] * clips_per_episode
    return [round(j * last / (clips_per_episode - 1)) for j in range(clips_per_episode)]


class ClipDataset(Dataset):
    """Clips of an EpisodeStore: item i = clip i % clips_per_episode of episode i // clips."""

    def __init__(self, store, num_frames: int, frame_stride: int = 1,
                 clips_per_episode: int = 1):
        if len(store) == 0:
            raise DataError(f"{getattr(store, 'root', 'episode store')}: no episodes")
        self.store = store
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.clips_per_episode = clips_per_episode
        self.stored_saliency: tuple[tuple[str, ...], int] | None = None  # (names, tubelet_t)

    def use_stored_saliency(self, names: tuple[str, ...], tubelet_t: int) -> None:
        """Add "saliency" {name: (N,)} to the clips, for each of `names` their episode's shard
        stores (clips of frame_stride 1 only: the stored maps are per source frame)."""
        if self.frame_stride == 1:
            self.stored_saliency = (tuple(names), tubelet_t)

    def __len__(self) -> int:
        return len(self.store) * self.clips_per_episode

    def __getitem__(self, i: int) -> dict:
        episode_index, clip = divmod(int(i), self.clips_per_episode)
        episode = self.store[episode_index]
        span = (self.num_frames - 1) * self.frame_stride + 1
        start = clip_starts(episode.num_frames, span, self.clips_per_episode)[clip]
        item = clip_of_episode(episode, start, self.num_frames, self.frame_stride, episode_index)
        if self.stored_saliency:
            from ia_world.masking.saliency import clip_saliency
            names, tubelet_t = self.stored_saliency
            stored = episode.saliency or {}
            item["saliency"] = {name: clip_saliency(stored[name], name, start, self.num_frames,
                                                    tubelet_t)
                                for name in names if stored.get(name) is not None}
        return item
