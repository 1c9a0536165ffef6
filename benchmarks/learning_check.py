"""Fast learning check of pretraining runs: fixed-count probes that keep time, in ~1 min.

For each run (or checkpoint) directory: ridge R^2 of held-out mean speed, kinetic and total
energy on Billiards scenes with exactly 5 balls (so counting explains nothing), from the same
time-keeping features `ia-world evaluate` uses (token mean + mean |z(t+1) - z(t)|), for the EMA
target and the online encoder, after the floor (the architecture at initialisation) of each new
init seed; the pixel control and the ground-truth ceiling close the table, with a second
ceiling blind to density (every ball's exact size and speed, not its mass: what a reader of
the pixels could know without inferring density from collisions; one row per feature set).
Splits and body count are `ia-world evaluate`'s fixed-count defaults (FixedSplitConfig) on the
VALIDATION role (ia_world/eval/splits.py): choices are made here, never on the test split.
RankMe raw / centred of the
held-out mean-pooled tokens; last, each run's gap closed by the weights it trained
(`checkpoint.trained_weights`) against its own floor. A subset of `ia-world evaluate` (no QA,
no per-object probe):

    python benchmarks/learning_check.py runs/a runs/b [--train 300 --heldout 200]
    # another held-out draw (a diagnostic of the split, not a role): --heldout-seed 60606
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ia_world.checkpoint import (
    CONFIG_FILE,
    initial_encoder,
    load_encoder,
    read_json,
    resolve_checkpoint,
    resolve_weights,
)
from ia_world.data.generator import EnvConfig
from ia_world.eval.features import (
    attribute_vocab,
    ceiling_features,
    density_blind_sets,
    encoder_features,
    fit_pixel_basis,
    pixel_features,
)
from ia_world.eval.probe import fit_probe
from ia_world.eval.simulated import (
    FixedSplitConfig,
    fixed_count_env,
    simulate_split,
    target_arrays,
)
from ia_world.eval.spectrum import centred_rankme, rankme
from ia_world.eval.splits import check_disjoint, heldout_seeds, other_roles, seed_set
from ia_world.eval.stats import gap_closed

TARGETS = ("mean_speed", "kinetic_energy", "total_energy")


def main() -> None:
    """Print one row per (run, weights) and the floor / pixel / ceiling rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run or checkpoint directories")
    parser.add_argument("--train", type=int, default=300, help="probe-fitting episodes")
    parser.add_argument("--heldout", type=int, default=200, help="held-out episodes")
    parser.add_argument("--heldout-seed", type=int, default=heldout_seeds("val").fixed_heldout,
                        help="base seed of the held-out split (default: the val role's); any "
                             "other must be disjoint from the fitting split and both roles'")
    args = parser.parse_args()
    fixed = FixedSplitConfig()
    check_disjoint({"fitting": seed_set(fixed.train_seed, args.train),
                    "held-out": seed_set(args.heldout_seed, args.heldout),
                    **other_roles("val", {"fixed_heldout": args.heldout}),
                    **({} if args.heldout_seed == heldout_seeds("val").fixed_heldout else
                       other_roles("test", {"fixed_heldout": args.heldout}))})
    grid = load_encoder(args.runs[0]).grid
    env = fixed_count_env(EnvConfig(), fixed.count, grid.size)
    train = simulate_split(env, args.train, fixed.train_seed, grid.frames)
    heldout = simulate_split(env, args.heldout, args.heldout_seed, grid.frames)
    clips = [np.stack([ep.frames[:grid.frames] for ep in split]) for split in (train, heldout)]
    targets = [target_arrays(split, grid.frames, TARGETS) for split in (train, heldout)]

    def row(name: str, train_x: np.ndarray, heldout_x: np.ndarray, extra: str = "") -> list:
        scores = [fit_probe(train_x, targets[0][t], heldout_x, targets[1][t])["r2"]
                  for t in TARGETS]
        print(f"{name:<44}" + "".join(f"{s:>+16.3f}" for s in scores) + extra, flush=True)
        return scores

    def encoder_row(name: str, encoder) -> list:
        with torch.no_grad():
            fitted, scored = (encoder_features(encoder, c, s, 50, name)
                              for c, s in zip(clips, (train, heldout)))
        pooled = scored.vector[:, :encoder.embed_dim]                              # E D
        return row(name, fitted.vector, scored.vector,
                   f"{rankme(pooled):>10.2f}{centred_rankme(pooled):>10.2f}")

    print(f"{'subject':<44}" + "".join(f"{t:>16}" for t in TARGETS)
          + f"{'RankMe':>10}{'centred':>10}")
    floors, gaps = {}, []
    for run in args.runs:
        seed = read_json(resolve_checkpoint(run) / CONFIG_FILE)["seed"]
        if seed not in floors:
            floors[seed] = encoder_row(f"floor (initialisation, seed {seed})",
                                       initial_encoder(run))
        scores = {weights: encoder_row(f"{run[-32:]} {weights}", load_encoder(run, "cpu", weights))
                  for weights in ("target", "encoder")}
        trained = resolve_weights(run, "trained")
        gaps.append((f"{run[-32:]} {trained}", [gap_closed(score, floor, 1.0) for score, floor
                                                in zip(scores[trained], floors[seed])]))
    basis = fit_pixel_basis(clips[0], grid.shape[0])
    row("pixel (PCA of frames and differences)", *(pixel_features(c, s, grid, basis).vector
                                                   for c, s in zip(clips, (train, heldout))))
    vocab = attribute_vocab(train + heldout)
    row("ceiling (ground-truth state)",
        *(ceiling_features(s, grid.frames, vocab, fixed.count).vector for s in (train, heldout)))
    blind = [density_blind_sets(s, grid.frames) for s in (train, heldout)]
    for name in blind[0]:
        row(f"ceiling blind to density ({name})", blind[0][name], blind[1][name])
    print("\ngap closed by the trained weights (against the run's floor; ceiling 1)")
    for name, gap in gaps:
        print(f"{name:<44}" + "".join(f"{g:>+16.3f}" for g in gap))


if __name__ == "__main__":
    main()
