"""Shard bytes per episode (format 1 raw vs format 2 zstd), decode cost per clip, and the data wait.

    python benchmarks/bench_shards.py [--episodes 4] [--steps 8] [--workers 2]

Bytes: the same episodes (64 px, 32 frames) encoded as a format-1 and a format-2 shard
(`encode_shard`), per episode: Billiards and Tabletop3D as `generate` makes them (saliency
included); PHYRE-Lite as recorded placement rollouts (32 frames every 10 physics steps, frames
only: PHYRE-Lite is not a `generate` env). Decode: ms per 16-frame clip read through
`ClipDataset` from a format-1 and a format-2 Billiards dataset. Then pretrains the `tiny` model
on the format-2 dataset for `--steps` steps with `data.num_workers=--workers` and prints, from
its log.csv (first logged step left out), the step time and the data-wait share, beside the
decode cost of one batch, all in one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from agents.placements import record_placement, sample_placement
from envs.phyre_lite.scene import build_space
from envs.phyre_lite.splits import split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.config import load_config, to_dataclass
from ia_world.data.clips import ClipDataset
from ia_world.data.episode import Episode
from ia_world.data.generator import EpisodeTask, GenerateConfig, generate, produce_episode
from ia_world.data.shards import (
    EpisodeStore,
    encode_shard,
    episode_seed,
    rewrite_dataset,
)
from ia_world.training import PretrainConfig, preprocess_overrides, train

sys.path.insert(0, str(Path(__file__).parent))
from bench_data_wait import wait_and_compute  # noqa: E402


def phyre_episodes(count: int) -> list[tuple[int, Episode]]:
    """Recorded PHYRE-Lite placements (32 frames of 64 px) as frames-only episodes."""
    rng = np.random.default_rng(0)
    tasks = split_tasks("cross", 0)[0]
    episodes = []
    while len(episodes) < count:
        task = tasks[int(rng.integers(len(tasks)))]
        action = sample_placement(rng, build_space(parse_task_id(task)), 0.5)
        placement = record_placement((task, action, 64, 10))
        if len(placement.frames) < 31:
            continue
        frames = np.concatenate([placement.initial[None], placement.frames[:31]])
        episodes.append((len(episodes), Episode(frames, [], {}, None, [], {"task": task})))
    return episodes


def bytes_per_episode(root: Path, episodes: int) -> list[str]:
    """Markdown rows: env, format-1 and format-2 bytes per episode, their ratio."""
    rows = []
    for env_id in ("ia_world/Billiards-v0", "ia_world/Tabletop3D-v0", "PHYRE-Lite"):
        if env_id == "PHYRE-Lite":
            made = phyre_episodes(episodes)
        else:
            task = EpisodeTask(str(root / env_id.split("/")[1]), env_id, "{}", 64, 32, 0)
            made = [produce_episode(task, (k, episode_seed(0, k))) for k in range(episodes)]
        raw, packed = (len(encode_shard(made, version)) / episodes for version in (1, 2))
        rows.append(f"| {env_id} | {raw / 1e3:.1f} | {packed / 1e3:.1f} | {raw / packed:.1f} |")
    return rows


def ms_per_clip(root: Path, clips: int = 64) -> float:
    """ms to read one 16-frame clip through ClipDataset (shards already opened once)."""
    dataset = ClipDataset(EpisodeStore(root), 16, clips_per_episode=4)
    dataset[0]
    start = time.perf_counter()
    for i in range(clips):
        dataset[i % len(dataset)]
    return 1000 * (time.perf_counter() - start) / clips


def main() -> None:
    """Print the three tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("| env | format 1 kB/episode | format 2 kB/episode | reduction |")
        print("|---|---|---|---|")
        print("\n".join(bytes_per_episode(root, args.episodes)), flush=True)
        data = root / "data"
        generate(GenerateConfig(out=str(data), episodes=8, frames=32, size=64, shard_size=4))
        old = root / "data-format1"
        generate(GenerateConfig(out=str(old), episodes=8, frames=32, size=64, shard_size=4))
        rewrite_dataset(old, 1)
        decode = {version: ms_per_clip(path) for version, path in ((1, old), (2, data))}
        out = root / "run"
        overrides = preprocess_overrides([
            f"data={data}", "masking=interaction", "model=tiny", f"steps={args.steps}",
            f"batch_size={args.batch}", "log_every=2", f"data.num_workers={args.workers}",
            "device=cpu", f"out={out}"])
        train(to_dataclass(load_config("pretrain", overrides), PretrainConfig))
        wait, compute = wait_and_compute(out)
        step = wait + compute
        print("\n| read per clip, format 1 | read per clip, format 2 | format 2 per batch of "
              f"{args.batch} | train step (tiny, batch {args.batch}) | data wait, "
              f"{args.workers} workers |")
        print("|---|---|---|---|---|")
        print(f"| {decode[1]:.2f} ms | {decode[2]:.2f} ms | {decode[2] * args.batch:.1f} ms "
              f"| {1000 * step:.0f} ms | {100 * wait / step:.1f}% |")


if __name__ == "__main__":
    main()
