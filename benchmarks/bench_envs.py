"""Generator throughput per env and size: full generator path vs bare physics+render, and workers.

    python benchmarks/bench_envs.py [--episodes 8] [--frames 32] [--generate-episodes 24]
                                    [--sizes 64 128] [--envs ...]

Columns: `bare` = frames/s of reset + the backend's advance and render hooks only (no ground
truth); `generator` = frames/s of simulate_episode + annotation JSON + shard write (what each
generate worker does); `ratio` = generator / bare (the cost of ground truth and I/O; aim >= 0.75);
`gen 1w` / `gen 2w` = episodes/s of `generate` end to end with 1 and 2 worker processes
(`--generate-episodes` each, worker start-up included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import envs
from ia_world.data.annotation import write_annotation
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.generator import EnvConfig, GenerateConfig, generate
from ia_world.data.shards import episode_seed, write_shard


def bare_fps(env, episodes: int, frames: int) -> float:
    """Frames/s of physics + rendering alone (the backend hooks, no ground-truth assembly)."""
    start = time.perf_counter()
    for k in range(episodes):
        env.reset(seed=episode_seed(0, k))
        for _ in range(frames - 1):
            env._backend_advance()
            env._backend_render()
    return episodes * frames / (time.perf_counter() - start)


def generator_fps(env, episodes: int, frames: int, root: Path) -> float:
    """Frames/s of the generator's per-episode path: simulate, annotate, write the shard."""
    start = time.perf_counter()
    done = []
    for k in range(episodes):
        episode = simulate_episode(env, episode_seed(0, k), frames)
        write_annotation(root, episode, k)
        done.append((k, episode))
    write_shard(root / "shard.safetensors", done)
    return episodes * frames / (time.perf_counter() - start)


def generate_eps(env_id: str, size: int, episodes: int, frames: int, workers: int,
                 root: Path) -> float:
    """Episodes/s of `generate` end to end (worker start-up included)."""
    cfg = GenerateConfig(env=EnvConfig(name=env_id, id=env_id), out=str(root),
                         episodes=episodes, frames=frames, size=size, shard_size=episodes,
                         workers=workers)
    start = time.perf_counter()
    generate(cfg)
    return episodes / (time.perf_counter() - start)


def main() -> None:
    """Print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--generate-episodes", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--envs", nargs="+", default=list(envs.ENV_IDS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.envs:
            for size in args.sizes:
                env = make_env(env_id, size=size, max_steps=args.frames)
                run_dir = Path(tmp) / f"{env_id.replace('/', '_')}-{size}"
                bare = bare_fps(env, args.episodes, args.frames)
                full = generator_fps(env, args.episodes, args.frames, run_dir / "path")
                env.close()
                one, two = (generate_eps(env_id, size, args.generate_episodes, args.frames, w,
                                         run_dir / f"workers{w}") for w in (1, 2))
                rows.append(f"| {env_id} | {size} | {bare:.0f} | {full:.0f} | {full / bare:.2f}"
                            f" | {one:.1f} | {two:.1f} |")
    print(f"\n{args.frames} frames per episode; {args.episodes} episodes for bare/generator, "
          f"{args.generate_episodes} for generate\n")
    print("| env | size | bare frames/s | generator frames/s | ratio | gen 1w eps/s "
          "| gen 2w eps/s |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
