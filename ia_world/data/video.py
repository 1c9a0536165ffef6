"""Video decoding for the real datasets: probe a file, sample clip frame indices, decode a clip.

Decoding runs ffmpeg (imageio-ffmpeg's binary) once per clip: a `select` filter passes on only the
frames the clip needs, and only those are resized and piped back; ffmpeg stops after the last one.
Resizing keeps the aspect ratio: the short side is scaled to `size`, then the centre is cropped
to `size` x `size` (V-JEPA's evaluation transform); no frame is ever stretched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import torch
from torch.utils.data import Dataset

from ia_world.atomic import atomic_write
from ia_world.errors import DataError

log = logging.getLogger(__name__)

# imageio-ffmpeg warns on every resized read that output and source sizes differ: by design here.
logging.getLogger("imageio_ffmpeg").addFilter(
    lambda record: "is different from the source frame size" not in record.getMessage())


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says: frame count, frame rate and frame size."""

    num_frames: int
    fps: float
    width: int
    height: int


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's header (no frames decoded); DataError naming the file if it is unreadable."""
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(frames)
    except (OSError, RuntimeError, StopIteration) as error:
        raise DataError(f"{path}: not a readable video ({str(error).splitlines()[0]})") from None
    finally:
        frames.close()
    fps, duration = float(meta.get("fps") or 0.0), float(meta.get("duration") or 0.0)
    width, height = meta["source_size"]
    if fps <= 0 or duration <= 0:
        raise DataError(f"{path}: video header has no frame rate or duration")
    return VideoInfo(max(int(round(duration * fps)), 1), fps, int(width), int(height))


def clip_indices(num_frames: int, clip_frames: int, stride: float, start: int) -> np.ndarray:
    """Frame indices start + round(i * stride) for i < clip_frames, held at the last frame."""
    offsets = np.round(np.arange(clip_frames) * stride).astype(np.int64)
    return np.minimum(start + offsets, num_frames - 1)


def clip_span(clip_frames: int, stride: float) -> int:
    """Number of source frames a clip of `clip_frames` frames at `stride` covers."""
    return int(round((clip_frames - 1) * stride)) + 1


def frame_stride(video_fps: float, clip_fps: float | None) -> float:
    """Source frames per clip frame: video_fps / clip_fps (1 keeps the native rate)."""
    return 1.0 if clip_fps is None else video_fps / clip_fps


def clip_start(num_frames: int, span: int, rng: np.random.Generator | None) -> int:
    """First frame of a clip covering `span` frames: random with `rng`, else centred."""
    room = max(num_frames - span, 0)
    return int(rng.integers(0, room + 1)) if rng is not None else room // 2


def _resize_filter(size: int) -> str:
    """ffmpeg filter: short side to `size` (aspect kept), then a centred size x size crop."""
    return (f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=area,"
            f"crop={size}:{size}")


def read_clip(path: str | Path, indices: np.ndarray, size: int | None = None) -> np.ndarray:
    """Decode frames `indices` of a video: uint8 (len(indices), size, size, 3) (native if None)."""
    wanted = np.unique(indices)
    select = "select=" + "+".join(f"eq(n\\,{int(i)})" for i in wanted)
    video_filter = select if size is None else f"{select},{_resize_filter(size)}"
    frames = imageio_ffmpeg.read_frames(
        str(path), output_params=["-vf", video_filter, "-fps_mode", "passthrough",
                                  "-frames:v", str(len(wanted))])
    try:
        width, height = next(frames)["size"]
        decoded = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in frames]
    except (OSError, RuntimeError, StopIteration) as error:
        raise DataError(f"{path}: cannot decode ({str(error).splitlines()[0]})") from None
    finally:
        frames.close()
    if len(decoded) < len(wanted):
        raise DataError(f"{path}: asked for frame {int(wanted[len(decoded)])} but the video "
                        f"ends before it")
    return np.stack(decoded)[np.searchsorted(wanted, indices)]


def sample_clip(path: Path, episode: int, frames: int, size: int, fps: float | None,
                rng: np.random.Generator | None, info: VideoInfo) -> dict[str, Any]:
    """Decode one clip as the pretraining clip dict (as ia_world.data.clips; energies NaN)."""
    stride = frame_stride(info.fps, fps)
    start = clip_start(info.num_frames, clip_span(frames, stride), rng)
    clip = read_clip(path, clip_indices(info.num_frames, frames, stride, start), size)
    return {"frames": torch.from_numpy(clip), "energy_total": torch.full((frames,), torch.nan),
            "energy_kinetic": torch.full((frames,), torch.nan), "episode": episode,
            "start": start}


def drop_bad(items: dict, check: Callable, skip_bad: bool, what: str) -> tuple[dict, int]:
    """(items passing `check`, number dropped); only with skip_bad, else items unchecked."""
    if not skip_bad:
        return items, 0
    kept, skipped = {}, []
    for key, item in items.items():
        try:
            check(item)
            kept[key] = item
        except DataError as error:
            skipped.append(str(error))
    if skipped:
        log.warning("skipped %d bad %s (first: %s)", len(skipped), what, skipped[0])
    return kept, len(skipped)


class VideoClips(Dataset):
    """One clip per video, as pretraining clip dicts (frames uint8 tensor (T, S, S, 3), NaN energy).

    videos maps an episode number to its file; `labels` (same keys) adds an int "label".
    A clip has `frames` frames at `fps` (None: the video's own rate), square `size`, starting
    at a random frame seeded by (seed, item) or, without `random_start`, centred. With
    `skip_bad` every file's header is checked up front and unreadable ones are dropped
    (`skipped` counts them); otherwise a bad file raises DataError when its clip is read.
    """

    def __init__(self, videos: dict[int, Path], frames: int = 16, size: int = 64,
                 fps: float | None = None, random_start: bool = True, seed: int = 0,
                 skip_bad: bool = False, labels: dict[int, int] | None = None):
        videos, self.skipped = drop_bad(videos, probe_video, skip_bad, "videos")
        self.indices, self.paths = list(videos), list(videos.values())
        self.labels = None if labels is None else [labels[i] for i in self.indices]
        self.frames, self.size, self.fps = frames, size, fps
        self.random_start, self.seed = random_start, seed
        self._info: dict[int, VideoInfo] = {}  # header cache, filled per DataLoader worker

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Clip i: {frames, energy_total, energy_kinetic (NaN), episode, start[, label]}."""
        if i not in self._info:
            self._info[i] = probe_video(self.paths[i])
        rng = np.random.default_rng([self.seed, i]) if self.random_start else None
        clip = sample_clip(self.paths[i], self.indices[i], self.frames, self.size, self.fps,
                           rng, self._info[i])
        if self.labels is not None:
            clip["label"] = self.labels[i]
        return clip


def write_video(path: str | Path, frames: np.ndarray, fps: float, codec: str = "libx264",
                root: str | Path | None = None) -> None:
    """Write uint8 (T, H, W, 3) frames as a video (atomically: temp file then rename; with
    `root`, refused outside it)."""
    def write(temp: Path) -> None:
        writer = imageio.get_writer(temp, fps=fps, codec=codec, macro_block_size=1,
                                    quality=None, format="FFMPEG",
                                    output_params=_lossless_params(codec))
        try:
            for frame in frames:
                writer.append_data(np.ascontiguousarray(frame))
        finally:
            writer.close()

    atomic_write(path, write, root)


def _lossless_params(codec: str) -> list[str]:
    """Near-lossless encoder settings, so test videos decode to the colours written."""
    if codec == "libvpx-vp9":
        return ["-crf", "10", "-b:v", "0"]
    return ["-crf", "10"]

