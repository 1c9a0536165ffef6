"""Mask cost next to a tiny-model training step, and hit-rate / selectivity of every strategy.

python benchmarks/bench_masking.py [--batch 8] [--threads 1] [--episodes 40] [--seed 10000]
"""

from __future__ import annotations

import argparse
import time

import torch
from gymnasium.envs.registration import registry
from tqdm import tqdm

from ia_world.data.episode import make_env, simulate_episode
from ia_world.eval.mask_metrics import HIT_RATIOS, episode_batch, strategy_report
from ia_world.masking import STRATEGIES, MaskConfig, make_mask_fn
from ia_world.models import IAJEPA, preset

ENVS = {  # env id -> kwargs
    "ia_world/Billiards-v0": {"num_balls": (5, 5)},
    "ia_world/Cradle-v0": {},
    "ia_world/Tabletop3D-v0": {},
}


def seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def timing_table(batch: int, repeats: int) -> None:
    """Per-batch mask time of every strategy vs one AdamW step of the tiny preset."""
    cfg = preset("tiny")
    grid = cfg.grid
    env = make_env("ia_world/Billiards-v0", num_balls=(5, 5))
    clips, _, _ = episode_batch([simulate_episode(env, s, grid.frames) for s in range(batch)],
                                grid)
    model = IAJEPA(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    mask = make_mask_fn(MaskConfig(strategy="random_tube"))(clips, grid,
                                                            torch.Generator().manual_seed(0))

    def train_step():
        loss = model(clips, mask).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step = seconds(train_step, repeats)
    print(f"\nbatch {batch} clips, {grid.num_tokens} tokens, {torch.get_num_threads()} threads")
    print(f"| strategy | mask ms / batch | % of a tiny train step ({step * 1e3:.0f} ms) |")
    print("|---|---|---|")
    for strategy in STRATEGIES:
        mask_fn = make_mask_fn(MaskConfig(strategy=strategy))
        generator = torch.Generator().manual_seed(0)
        cost = seconds(lambda f=mask_fn, g=generator: f(clips, grid, g), repeats)
        print(f"| {strategy} | {cost * 1e3:.1f} | {100 * cost / step:.1f}% |")


def quality_table(episodes: int, seed: int) -> None:
    """Hit-rate at HIT_RATIOS and selectivity of every strategy on each registered env."""
    grid = preset("tiny").grid
    header = " | ".join(f"hit@{r}" for r in HIT_RATIOS)
    for env_id, kwargs in ENVS.items():
        if env_id not in registry:
            print(f"\n{env_id}: not registered yet, skipped")
            continue
        env = make_env(env_id, size=grid.size, **kwargs)
        eps = [simulate_episode(env, seed + i, grid.frames)
               for i in tqdm(range(episodes), desc=env_id, leave=False)]
        env.close()
        clips, collisions, moving = episode_batch(eps, grid)
        print(f"\n{env_id} {kwargs or ''}: {episodes} episodes "
              f"(seeds {seed}..{seed + episodes - 1}), {int(collisions.sum())} collision tokens, "
              f"{int((moving & ~collisions).sum())} other moving tokens")
        print(f"| strategy | {header} | selectivity (AUROC) |")
        print("|---" * (len(HIT_RATIOS) + 2) + "|")
        for strategy in STRATEGIES:
            report = strategy_report(MaskConfig(strategy=strategy), clips, collisions, moving,
                                     grid, seed=seed)
            hits = " | ".join(f"{report[f'hit@{r}']:.2f}" for r in HIT_RATIOS)
            print(f"| {strategy} | {hits} | {report['selectivity']:.3f} |")


def main() -> None:
    """Parse the arguments and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=10_000, help="first held-out episode seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (profile on 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    timing_table(args.batch, args.repeats)
    quality_table(args.episodes, args.seed)


if __name__ == "__main__":
    main()
