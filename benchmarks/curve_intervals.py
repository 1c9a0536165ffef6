"""Does a learning curve fall back? Every kept checkpoint of a run with paired intervals.

Scores the floor (the architecture at initialisation) and each `checkpoints/step-*` of every run
(the weights it trained: the EMA target, or the online encoder for a frozen target) with the
fixed-count probes of `ia-world evaluate` on the VALIDATION role (ridge on the time-keeping
features; `--train` fitting and `--heldout` held-out episodes, evaluate's sizes by default), and
bootstraps the held-out episodes once per run for every checkpoint together: 95% intervals of
R^2(step) - R^2(previous checkpoint) and R^2(step) - R^2(floor). Marks a checkpoint after
`--after` that is below the previous one by more than its interval (the whole interval below 0,
issue 26's "falls back") and one below the floor by more than its interval:

    python benchmarks/curve_intervals.py runs/a runs/b --cache runs/val-cache [--json out.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ia_world.atomic import atomic_write_json
from ia_world.checkpoint import curve_encoders
from ia_world.data.generator import EnvConfig
from ia_world.eval.curves import CurveConfig, curve_episodes, curve_step_cis
from ia_world.eval.features import encoder_features, split_clips
from ia_world.eval.probe import fit_probes
from ia_world.eval.simulated import FixedSplitConfig, target_arrays

TARGETS = ("mean_speed", "kinetic_energy", "num_collisions")  # total = kinetic on Billiards


def run_predictions(run: Path, cfg: CurveConfig) -> tuple[dict, dict[str, dict[int, np.ndarray]]]:
    """Held-out truth and each step's held-out predictions (step 0: the floor), per target."""
    encoders = curve_encoders(run)
    grid = encoders[0][1].grid
    episodes = curve_episodes(cfg, EnvConfig(), grid)
    clips = [split_clips(split, grid) for split in episodes]
    targets = [target_arrays(split, grid.frames, TARGETS) for split in episodes]
    predicted: dict[str, dict[int, np.ndarray]] = {t: {} for t in TARGETS}
    for step, encoder in encoders:
        with torch.no_grad():
            fitted, scored = (encoder_features(encoder, c, s, 50, f"{run.name} step {step}").vector
                              for c, s in zip(clips, episodes))
        for name, result in fit_probes(fitted, targets[0], scored, targets[1]).items():
            predicted[name][step] = np.asarray(result["predicted"])
    return targets[1], predicted


def interval(ci: list[float] | None) -> str:
    """'[lo, hi]' with a mark where the whole interval is below 0."""
    if ci is None:
        return ""
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" + (" BELOW" if ci[1] < 0 else "")


def main() -> None:
    """Print one table per run and target; optionally write every figure as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pretraining run directories")
    parser.add_argument("--train", type=int, default=FixedSplitConfig().train_episodes,
                        help="fixed-count probe-fitting episodes")
    parser.add_argument("--heldout", type=int, default=FixedSplitConfig().heldout_episodes,
                        help="val held-out episodes")
    parser.add_argument("--after", type=int, default=1000,
                        help="falls back: only checkpoints after this step count")
    parser.add_argument("--cache", help="where the simulated splits are kept")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    cfg = CurveConfig(train_episodes=args.train, heldout_episodes=args.heldout, cache=args.cache)
    cfg.validate()
    report, tested, marked = {}, 0, {"falls back": 0, "below floor": 0}
    for run in args.runs:
        true, predicted = run_predictions(run, cfg)
        report[str(run)] = {}
        for name in TARGETS:
            curve = curve_step_cis(true[name], predicted[name])
            report[str(run)][name] = {str(step): value for step, value in curve.items()}
            print(f"\n{run} {name}\n| step | R^2 | minus previous | minus floor |\n"
                  "|---|---|---|---|")
            for step, value in curve.items():
                print(f"| {step} | {value['r2']:.3f} | {interval(value['vs_previous'])} "
                      f"| {interval(value['vs_floor'])} |")
                if step > args.after:
                    tested += 2
                    marked["falls back"] += value["vs_previous"][1] < 0
                    marked["below floor"] += value["vs_floor"][1] < 0
    print(f"\n{tested} one-sided tests after step {args.after} (95% two-sided intervals: chance "
          f"alone marks about {0.025 * tested:.1f}); marked: {marked}")
    if args.json:
        atomic_write_json(args.json, {"train": args.train, "heldout": args.heldout,
                                      "runs": report})


if __name__ == "__main__":
    main()
