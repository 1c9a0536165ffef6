"""AUCCESS of one `ia-world solve` run minus another's on the same puzzles, e.g. the latent
planner with a pretrained encoder against the same planner with that encoder's untrained floor
(`ia_world.checkpoint.write_floor_checkpoint`), each over its own world-model seeds:

    python benchmarks/solve_difference.py <solve_a>/results.json <solve_b>/results.json

Prints each side's AUCCESS and a - b: the paired bootstrap over puzzles of the unit means, each
unit pair's paired bootstrap, and the t-interval over the unit pairs (units = world models when
a run has several, else agent seeds; unit k of a is paired with unit k of b).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from agents.planner_stats import compare, interval, puzzle_auccess, run_units
from ia_world.checkpoint import read_json
from ia_world.eval.stats import BOOTSTRAP_SAMPLES


def units(path: Path) -> tuple[np.ndarray, list[str]]:
    """(U, P) per-puzzle AUCCESS of a solve's results.json and its puzzles' task ids."""
    results = read_json(path)
    attempts = results["config"]["attempts"]
    per_run = np.array([puzzle_auccess(run["first_success"], attempts)
                        for run in results["runs"]])                        # (W * S, P)
    world_models = max(1, len(results["config"]["world_models"]))
    return (run_units(per_run.reshape(world_models, -1, per_run.shape[-1])),
            [puzzle["task"] for puzzle in results["puzzles"]])


def main() -> None:
    """Print a, b and a - b with their intervals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="results.json of the first solve")
    parser.add_argument("b", type=Path, help="results.json of the solve subtracted")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP_SAMPLES)
    args = parser.parse_args()
    (a, tasks_a), (b, tasks_b) = units(args.a), units(args.b)
    if tasks_a != tasks_b or a.shape != b.shape:
        raise SystemExit(f"{args.a} and {args.b} are not the same puzzles and units "
                         f"({a.shape} against {b.shape})")
    difference = compare(a, b, args.bootstrap)
    print(f"{a.shape[1]} puzzles, {a.shape[0]} units per side")
    for name, side in (("a", a), ("b", b)):
        print(f"{name}: AUCCESS {side.mean():.3f}, units " +
              " / ".join(f"{unit.mean():.3f}" for unit in side))
    across = difference["across"]
    print(f"a - b: {difference['difference']:+.3f}, over puzzles {interval(difference['ci'])}, "
          f"over units {interval(across['ci'])} (n={across['n']})")
    for k, unit in enumerate(difference["per_unit"]):
        print(f"  unit {k}: {unit['difference']:+.3f} {interval(unit['ci'])}")


if __name__ == "__main__":
    main()
