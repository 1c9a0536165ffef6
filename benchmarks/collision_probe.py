"""Collision probe (mass from momentum transfer): R^2 table subject x target, and its cost.

Runs `ia_world.eval.collision_probe` on a checkpoint (default: an untrained tiny IA-JEPA written
to a temporary directory, so encoder = floor) with the validation-role seeds unless told
otherwise, and prints held-out R^2 [95% bootstrap CI] per subject and target, plus the seconds
spent building the splits and fitting the probes:

    python benchmarks/collision_probe.py [--ckpt runs/x] [--train 256 --heldout 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from ia_world.checkpoint import (
    CONFIG_FILE,
    initial_encoder,
    load_encoder,
    read_json,
    resolve_checkpoint,
    write_initial_checkpoint,
)
from ia_world.data.sources import pretraining_seeds
from ia_world.eval.collision_probe import (
    COLLISION_SUBJECTS,
    COLLISION_TARGETS,
    CollisionProbeConfig,
    collision_probe,
    collision_splits,
    split_seeds,
)
from ia_world.eval.evaluate import check_disjoint
from ia_world.eval.splits import heldout_seeds

VALIDATION_SEEDS = (CollisionProbeConfig.train_seed, heldout_seeds("val").collision_heldout)
RADIUS, DENSITY = (0.45, 0.9), (0.5, 2.0)  # Billiards' priors (envs/pymunk_scenes.py)


def density_blind_bound(samples: int = 2_000_000, seed: int = 0, bins: int = 400) -> float:
    """Monte Carlo R^2 of the best density-blind guess of |log(m_a / m_b)|, E[target | sizes],
    under Billiards' priors (without the split's selection): Var(E[Y | S]) / Var(Y)."""
    rng = np.random.default_rng(seed)
    radius, density = rng.uniform(*RADIUS, (samples, 2)), rng.uniform(*DENSITY, (samples, 2))
    visible = 2 * np.log(radius[:, 0] / radius[:, 1])          # log mass ratio from sizes
    target = np.abs(np.log(density[:, 0] / density[:, 1]) + visible)
    edges = np.quantile(visible, np.linspace(0, 1, bins + 1))
    cell = np.clip(np.searchsorted(edges, visible) - 1, 0, bins - 1)
    conditional = np.bincount(cell, target) / np.bincount(cell)
    return float(conditional[cell].var() / target.var())


def main() -> None:
    """Parse the arguments, run the probe, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="checkpoint or run dir (default: untrained tiny)")
    parser.add_argument("--weights", default="target", choices=("target", "encoder"))
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--heldout", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs=2, default=VALIDATION_SEEDS,
                        metavar=("TRAIN", "HELDOUT"), help="base seeds (default: validation)")
    parser.add_argument("--margin", type=int, help="default: a quarter of the clip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or str(write_initial_checkpoint(f"{tmp}/run", "tiny", seed=0))
        encoders = {"encoder": load_encoder(ckpt, weights=args.weights),
                    "floor": initial_encoder(ckpt, weights=args.weights)}
        pretraining = pretraining_seeds(read_json(resolve_checkpoint(ckpt) / CONFIG_FILE))
    cfg = CollisionProbeConfig(train_episodes=args.train, heldout_episodes=args.heldout,
                               train_seed=args.seeds[0], margin=args.margin)
    cfg.validate()
    grid = encoders["encoder"].grid
    start, cpu_start = time.perf_counter(), time.process_time()
    splits = collision_splits(cfg, args.seeds[1], grid.frames, grid.size)
    built, cpu_built = time.perf_counter(), time.process_time()
    check_disjoint({**{f"collision {name}": split_seeds(clips) for name, clips in splits.items()},
                    "pretraining": pretraining})
    result = collision_probe(encoders, splits, seed=cfg.train_seed)
    done, cpu_done = time.perf_counter(), time.process_time()
    print(f"checkpoint: {args.ckpt or 'untrained tiny (seed 0)'}; {grid.frames} frames at "
          f"{grid.size} px; {args.train} train + {args.heldout} held-out clips, seeds "
          f"{args.seeds[0]} / {args.seeds[1]}, margin {args.margin or 'a quarter of the clip'}")
    print(f"{'subject':<14}" + "".join(f"{t:>28}" for t in COLLISION_TARGETS))
    for subject in COLLISION_SUBJECTS:
        cells = [f"{r['r2']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
                 for r in (result[t][subject] for t in COLLISION_TARGETS)]
        print(f"{subject:<14}" + "".join(f"{c:>28}" for c in cells))
    print(f"best density-blind R^2 on mass_ratio under the priors (Monte Carlo): "
          f"{density_blind_bound():.3f}")
    print(f"splits {built - start:.1f} s wall / {cpu_built - cpu_start:.1f} s CPU; probe "
          f"(encode + fit) {done - built:.1f} s wall / {cpu_done - cpu_built:.1f} s CPU")


if __name__ == "__main__":
    main()
