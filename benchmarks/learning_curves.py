"""Learning curves of pretraining runs (`pretrain probe_every=k`), side by side, without evaluating.

Prints the table `report` puts in report.md (per strategy and probe step, the mean over runs of
the validation-role curve probes; step 0 = the floor) and writes the same curves.png:

    python benchmarks/learning_curves.py runs/a runs/b [--png curves.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ia_world.errors import DataError
from ia_world.report import curves_markdown, curves_plot, run_curve


def main() -> None:
    """Print the runs' curve table and write their plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="pretraining run directories")
    parser.add_argument("--png", default="curves.png", help="where the plot goes")
    args = parser.parse_args()
    curves = [(f"{strategy} ({Path(run).name})", curve) for run in args.runs
              for strategy, curve in [run_curve(run) or (None, None)] if curve]
    if not curves:
        raise DataError(f"no learning curves in {args.runs} (pretrain with probe_every=k)")
    print(curves_markdown(curves))
    curves_plot(curves, Path(args.png))
    print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
