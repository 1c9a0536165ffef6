"""Wall time of the default pretraining regime (`regime=cpu`) against a budget of 30 min.

Issue 26's target: 10,000 steps of the default regime in <= 30 min on 2 idle cores.

    python benchmarks/regime_time.py --data runs/data800 [--steps 10000] [--out <new dir>]

Runs `ia-world pretrain regime=cpu steps=<steps>` as a user would (data loading, the learning-curve
probes every `probe_every` steps and the checkpoints included) in a new directory, then prints
its wall time, the part of it spent in optimisation steps (log.csv's data_s + compute_s) and the
rest (start-up, probes, checkpoints), and the ratio of the time for 10,000 steps (measured, or
scaled linearly from a shorter run, which overstates it: start-up is paid once; for the
four-step regime 2,000 steps scaled read 34.5 min where 10,000 measured 31.4) to 30 minutes.
Any further argument is passed to pretrain.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ia_world.training import LOG_FILE

BUDGET_STEPS, BUDGET_S = 10_000, 30 * 60


def step_seconds(log_csv: Path) -> float:
    """Seconds spent in optimisation steps (data wait + compute), summed over log.csv's rows
    (the step-0 row, the floor's probes, has no step time)."""
    seconds, last_step = 0.0, 0
    with log_csv.open(newline="") as rows:
        for row in csv.DictReader(rows):
            step = int(row["step"])
            if not step:
                continue
            seconds += (step - last_step) * (float(row["data_s"]) + float(row["compute_s"]))
            last_step = step
    return seconds


def main() -> None:
    """Time one regime run and print it against the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an `ia-world generate` dataset")
    parser.add_argument("--steps", type=int, default=BUDGET_STEPS)
    parser.add_argument("--out", help="run directory, must not exist (default: a new temp dir)")
    args, overrides = parser.parse_known_args()
    if args.out is None:
        args.out = str(Path(tempfile.mkdtemp(prefix="regime_time-")) / "run")
    elif Path(args.out).exists():
        parser.error(f"--out {args.out}: exists; the timed run needs a new directory")
    command = [sys.executable, "-m", "ia_world_app.cli", "pretrain", "regime=cpu",
               f"steps={args.steps}", f"data={args.data}", f"out={args.out}", *overrides]
    print(" ".join(command[2:]))
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    in_steps = step_seconds(Path(args.out) / LOG_FILE)
    projected = wall * BUDGET_STEPS / args.steps
    print(f"{args.steps} steps: {wall / 60:.1f} min wall ({in_steps / 60:.1f} min in steps, "
          f"{(wall - in_steps) / 60:.1f} min start-up, probes and checkpoints); "
          f"{BUDGET_STEPS} steps {'take' if args.steps == BUDGET_STEPS else 'would take'} "
          f"{projected / 60:.1f} min = {projected / BUDGET_S:.2f} x the 30 min budget")


if __name__ == "__main__":
    main()
