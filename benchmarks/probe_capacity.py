"""Does a learning curve fall because information is lost, or because its probe needs more data?

Scores the floor and every kept checkpoint of a run with the curve probes (ia_world/eval/curves.py,
VALIDATION-role splits) fitted on N fixed-count training episodes, for each N, against the same
held-out episodes. If a later checkpoint's deficit shrinks as N grows, the features still hold
the quantity but spread it over more directions than a small ridge probe can find:

    python benchmarks/probe_capacity.py runs/a --train 300 1200 --cache runs/curve-cache
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ia_world.checkpoint import curve_encoders
from ia_world.data.generator import EnvConfig
from ia_world.eval.curves import CURVE_FIELDS, CurveConfig, curve_metrics, curve_splits


def main() -> None:
    """Print step x training-size rows of the curve probes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a pretraining run directory")
    parser.add_argument("--train", type=int, nargs="+", default=[300, 1200],
                        help="fixed-count training episodes of each probe fit")
    parser.add_argument("--cache", help="where simulated splits are kept")
    args = parser.parse_args()
    encoders = curve_encoders(args.run)
    grid = encoders[0][1].grid
    print("| train episodes | step | " + " | ".join(CURVE_FIELDS) + " |")
    print("|---" * (len(CURVE_FIELDS) + 2) + "|")
    for count in args.train:
        splits = curve_splits(replace(CurveConfig(cache=args.cache), train_episodes=count),
                              EnvConfig(), grid)
        for step, encoder in encoders:
            metrics = curve_metrics(encoder.encoder, splits, grid)
            print(f"| {count} | {step} | "
                  + " | ".join(f"{metrics[key]:.3f}" for key in CURVE_FIELDS) + " |", flush=True)


if __name__ == "__main__":
    main()
