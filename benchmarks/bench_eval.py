"""Time of `ia-world evaluate` with every control on the demo's split sizes, run twice.

    python benchmarks/bench_eval.py [--runs 2]

An untrained tiny checkpoint (the demo's model), the demo's cpu-preset sizes: 48 + 48
variable-count episodes, 128 + 64 fixed-count episodes, 5 QA epochs, the val role. The first run
fills the split cache (simulated splits and questions); later runs read it, as every run of
`compare` and `demo` after the first does. Prints each run's wall time and its ratio to the
issue's 90 s budget.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ia_world.checkpoint import write_initial_checkpoint
from ia_world.eval.evaluate import EvalConfig, FixedSplitConfig, evaluate
from ia_world.eval.qa_head import QAHeadConfig

BUDGET_S = 90.0


def main() -> None:
    """Evaluate the same checkpoint `--runs` times with one cache; print the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        checkpoint = write_initial_checkpoint(Path(root) / "run", "tiny", seed=0)
        cfg = EvalConfig(ckpt=str(checkpoint), train_episodes=48, heldout_episodes=48,
                         qa=QAHeadConfig(epochs=5, min_questions=20),
                         fixed=FixedSplitConfig(train_episodes=128, heldout_episodes=64),
                         cache=str(Path(root) / "cache"))
        for run in range(args.runs):
            start = time.perf_counter()
            evaluate(cfg)
            seconds = time.perf_counter() - start
            state = "cache filled" if run == 0 else "cache read"
            print(f"evaluate run {run + 1} ({state}): {seconds:.1f} s = "
                  f"{seconds / BUDGET_S:.2f}x the {BUDGET_S:.0f} s budget", flush=True)


if __name__ == "__main__":
    main()
