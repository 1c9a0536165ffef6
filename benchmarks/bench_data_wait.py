"""Data-wait share of pretraining with the saliency stored in the shards vs computed live.

    python benchmarks/bench_data_wait.py --steps 12 --workers 0 1

Generates a small Billiards shard dataset (its shards store the saliency), then pretrains the
`tiny` model on it twice with the same seed and `masking=<strategy>`: once sampling masks from the
stored saliency (`masking.stored=true`), once computing the saliency in the DataLoader workers
(`masking.stored=false`, what CLEVRER, SSv2, older shards and `data=live` do). Prints, from each
run's log.csv (the first logged step, the warm-up, left out), the mean seconds per step spent
waiting for data and computing, their sum and the data-wait share. With 0 workers the saliency
runs in the training process and shows as data wait; with workers it overlaps the step but
competes for the same cores, which shows as compute time on a 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import tempfile
from pathlib import Path

from ia_world.config import load_config, to_dataclass
from ia_world.training import LOG_FILE, PretrainConfig, preprocess_overrides, train
from ia_world_app.cli import run_command


def wait_and_compute(run_dir: Path) -> tuple[float, float]:
    """Mean data-wait and compute seconds per step over log.csv rows after the first."""
    with (run_dir / LOG_FILE).open() as handle:
        rows = list(csv.DictReader(handle))[1:]
    return (sum(float(r["data_s"]) for r in rows) / len(rows),
            sum(float(r["compute_s"]) for r in rows) / len(rows))


def main() -> None:
    """Print one markdown row per saliency source."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="interaction")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        run_command("generate", [f"out={data}", f"episodes={args.episodes}", "frames=32",
                                 "size=64"])
        print("| saliency | strategy | workers | batch | data s/step | compute s/step | "
              "step s | data-wait share |")
        print("|---|---|---|---|---|---|---|---|")
        for workers, stored in itertools.product(args.workers, ("true", "false")):
            out = Path(tmp) / f"run-{workers}-{stored}"
            overrides = preprocess_overrides([
                f"data={data}", f"masking={args.strategy}", f"masking.stored={stored}",
                "model=tiny", f"steps={args.steps}", f"batch_size={args.batch}", "log_every=2",
                f"data.num_workers={workers}", "device=cpu", f"out={out}"])
            train(to_dataclass(load_config("pretrain", overrides, PretrainConfig), PretrainConfig))
            wait, compute = wait_and_compute(out)
            source = "stored in shards" if stored == "true" else "computed live"
            step = wait + compute
            print(f"| {source} | {args.strategy} | {workers} | {args.batch} | {wait:.3f} "
                  f"| {compute:.3f} | {step:.3f} | {100 * wait / step:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
