"""Clips/s of the CLEVRER and SSv2 loaders (decoded from video) next to the shard loader.

    python benchmarks/bench_data.py [--videos 8] [--frames 16] [--size 64] [--batches 4]

Writes a tiny dataset of each kind in a temporary directory (CLEVRER: 480x320 mp4 at 25 fps,
SSv2: 240 px high VP9 webm at 12 fps, shards: generated Billiards), then times DataLoader
iteration with 0 and 2 workers in one run, so the ratios are side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from ia_world.data.clevrer import clevrer_clips
from ia_world.data.clips import ClipDataset
from ia_world.data.shards import EpisodeStore
from ia_world.data.ssv2 import ssv2_clips
from ia_world.data.video import write_video
from ia_world_app.cli import run_command


def write_datasets(root: Path, videos: int, video_frames: int) -> None:
    """CLEVRER mp4s, SSv2 webms + label JSONs and a shard dataset under root."""
    t, y, x = np.meshgrid(np.arange(video_frames), np.arange(320), np.arange(480), indexing="ij")
    for k in range(videos):
        ball = ((x - 8 * t - 40 * k) % 480) ** 2 + (y - 160) ** 2 < 900  # a moving disc
        frames = np.stack([ball * 200, (x // 2 + k) % 256, y // 2], -1).astype(np.uint8)
        write_video(root / "clevrer" / f"video_{k:05d}.mp4", frames, fps=25)
        write_video(root / "ssv2" / f"{k}.webm", frames[:, :240, :427], fps=12,
                    codec="libvpx-vp9")
    labels = root / "ssv2" / "something-something-v2-labels.json"
    labels.write_text('{"Holding something": "0"}')
    entries = ",".join(f'{{"id": "{k}", "template": "Holding [something]"}}'
                       for k in range(videos))
    (root / "ssv2" / "something-something-v2-train.json").write_text(f"[{entries}]")
    run_command("generate", [f"out={root / 'shards'}", f"episodes={videos}",
                             f"frames={video_frames}", "size=64"])


def clips_per_second(dataset, workers: int, batches: int, batch_size: int) -> float:
    """Clips/s of iterating `batches` batches (after one warm-up batch)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True,
                        persistent_workers=workers > 0)
    iterator = iter(loader)
    next(iterator)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        try:
            count += len(next(iterator)["frames"])
        except StopIteration:
            iterator = iter(loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    """Print clips/s per loader and worker count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_datasets(root, args.videos, args.video_frames)
        loaders = {
            "shards": ClipDataset(EpisodeStore(root / "shards"), args.frames),
            "clevrer": clevrer_clips(root / "clevrer", "train", args.frames, args.size),
            "ssv2": ssv2_clips(root / "ssv2", "train", args.frames, args.size),
        }
        print(f"{'loader':8s} {'workers':>7s} {'clips/s':>9s} {'vs shards':>9s}")
        for workers in (0, 2):
            base = None
            for name, dataset in loaders.items():
                rate = clips_per_second(dataset, workers, args.batches, args.batch_size)
                base = base or rate
                print(f"{name:8s} {workers:7d} {rate:9.1f} {rate / base:9.2f}")


if __name__ == "__main__":
    main()
