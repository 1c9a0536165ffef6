"""Generator throughput per env and size: the generator's path vs bare physics+render, side by side.

    python benchmarks/bench_envs.py [--episodes 4] [--rounds 3] [--frames 32] [--sizes 64 128]
                                    [--envs ...] [--generate-episodes 0]

Columns (frames/s of CPU time of this process, torch on one thread like one generate worker;
the three paths alternate `--rounds` times on the same env so the machine's load hits them
alike; each path's median round counts): `bare` = reset + the backend's advance and render
hooks only (no ground truth);
`generator` = simulate_episode + annotation JSON + shard write (ground truth and I/O);
`+ saliency` = all a generate worker does (`make_shard`: the above plus the stored saliency
maps); `ratio` = generator / bare (aim >= 0.75) and `ratio + sal.` = (+ saliency) / bare.
`--generate-episodes N` adds episodes/s of `generate` end to end with 1 and 2 worker processes
(wall clock, worker start-up included).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

import envs
from ia_world.data.annotation import write_annotation
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.generator import (
    EnvConfig,
    EpisodeTask,
    GenerateConfig,
    dataset_identity,
    generate,
    make_shard,
)
from ia_world.data.shards import episode_seed, write_shard


def bare_seconds(env, seeds: list[int], frames: int) -> float:
    """CPU seconds of physics + rendering alone (the backend hooks, no ground-truth assembly)."""
    start = time.process_time()
    for seed in seeds:
        env.reset(seed=seed)
        for _ in range(frames - 1):
            env._backend_advance()
            env._backend_render()
    return time.process_time() - start


def generator_seconds(env, jobs: list[tuple[int, int]], frames: int, root: Path) -> float:
    """CPU seconds of the generator's path without saliency: simulate, annotate, write."""
    start = time.process_time()
    done = []
    for k, seed in jobs:
        episode = simulate_episode(env, seed, frames)
        write_annotation(root, episode, k)
        done.append((k, episode))
    write_shard(root / "shard.safetensors", done)
    return time.process_time() - start


def worker_seconds(task: EpisodeTask, jobs: list[tuple[int, int]]) -> float:
    """CPU seconds of what a generate worker does for one shard (`make_shard`)."""
    identity = dataset_identity(generate_config(task.env_id, task.size, len(jobs), task.frames,
                                                1, Path(task.root)))
    start = time.process_time()
    make_shard(task, 0, jobs, identity)
    return time.process_time() - start


def generate_config(env_id: str, size: int, episodes: int, frames: int, workers: int,
                    root: Path) -> GenerateConfig:
    """The `generate` config of one shard of `episodes` episodes of env `env_id`."""
    return GenerateConfig(env=EnvConfig(name=env_id, id=env_id), out=str(root),
                          episodes=episodes, frames=frames, size=size, shard_size=episodes,
                          workers=workers)


def generate_eps(env_id: str, size: int, episodes: int, frames: int, workers: int,
                 root: Path) -> float:
    """Episodes/s of `generate` end to end (wall clock, worker start-up included)."""
    cfg = generate_config(env_id, size, episodes, frames, workers, root)
    start = time.perf_counter()
    generate(cfg)
    return episodes / (time.perf_counter() - start)


def main() -> None:
    """Print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--generate-episodes", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--envs", nargs="+", default=list(envs.ENV_IDS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.envs:
            for size in args.sizes:
                run_dir = Path(tmp) / f"{env_id.replace('/', '_')}-{size}"
                task = EpisodeTask(str(run_dir / "worker"), env_id, "{}", size, args.frames, 0)
                worker_seconds(task, [(0, 0)])  # warm-up; builds the worker's cached env
                env = make_env(env_id, size=size, max_steps=args.frames)
                seconds: list[list[float]] = [[], [], []]
                for r in range(args.rounds):
                    jobs = [(k, episode_seed(r, k)) for k in range(args.episodes)]
                    seconds[0].append(bare_seconds(env, [seed for _, seed in jobs], args.frames))
                    seconds[1].append(generator_seconds(env, jobs, args.frames,
                                                        run_dir / f"path{r}"))  # new files
                    seconds[2].append(worker_seconds(
                        dataclasses.replace(task, root=str(run_dir / f"worker{r}")), jobs))
                env.close()
                # the median round of each path: one round slowed by the machine's load is left out
                bare, full, worker = (args.episodes * args.frames / statistics.median(s)
                                      for s in seconds)
                row = (f"| {env_id} | {size} | {bare:.0f} | {full:.0f} | {worker:.0f} "
                       f"| {full / bare:.2f} | {worker / bare:.2f} |")
                if args.generate_episodes:
                    one, two = (generate_eps(env_id, size, args.generate_episodes, args.frames,
                                             w, run_dir / f"workers{w}") for w in (1, 2))
                    row += f" {one:.1f} | {two:.1f} |"
                rows.append(row)
    print(f"\n{args.frames} frames per episode; {args.rounds} rounds of {args.episodes} episodes "
          "per path (CPU time of the median round, torch on 1 thread)\n")
    extra = " gen 1w eps/s | gen 2w eps/s |" if args.generate_episodes else ""
    print("| env | size | bare frames/s | generator frames/s | + saliency frames/s | ratio "
          "| ratio + sal. |" + extra)
    print("|---|---|---|---|---|---|---|" + "---|" * (2 if args.generate_episodes else 0))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
