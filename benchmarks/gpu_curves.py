"""Learning curves on one GPU: many `ia-world pretrain` runs side by side, packed for the way back.

Generates the dataset (if absent), starts every run at once on the one GPU (each a process with
its own DataLoader worker), stops them at a deadline, then writes the curve table and plot
(benchmarks/learning_curves.py) and packs every run's log.csv, final and best/ weights (model
and config only, no optimizer state) into tar files of at most --pack-mib each:

    python benchmarks/gpu_curves.py --out OUT --data DATA --deadline 420 \\
        --common "regime=cpu steps=10000 device=cuda amp=false" \\
        --run inter0 "masking=interaction seed=0" --run tube0 "masking=random_tube seed=0"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "ia_world_app.cli"]
WEIGHT_FILES = ("model.safetensors", "config.json", "metrics.json", "train_state.json")


def generate(data: Path, episodes: int, workers: int, log: Path) -> None:
    """The pretraining shards (`ia-world generate`), unless `data` already holds them."""
    if (data / "dataset.json").exists():
        return
    env = dict(os.environ, OMP_NUM_THREADS="1")  # each of `workers` processes: one thread
    with log.open("w") as out:
        subprocess.run([*CLI, "generate", f"episodes={episodes}", f"out={data}",
                        f"workers={workers}"], check=True, stdout=out, stderr=subprocess.STDOUT,
                       env=env)


def launch(runs: dict[str, str], common: str, data: Path, out: Path) -> dict:
    """Start one `pretrain` process per run: name -> (process, log file)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    started = {}
    for name, overrides in runs.items():
        args = [*CLI, "pretrain", *shlex.split(common), *shlex.split(overrides), f"data={data}",
                f"out={out / name}"]
        log = (out / f"{name}.log").open("w")
        started[name] = (subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT),
                         log)
    return started


def wait(started: dict, deadline: float) -> dict[str, int | None]:
    """Wait for every run or the deadline (then SIGTERM / SIGKILL): name -> return code."""
    while time.time() < deadline and any(p.poll() is None for p, _ in started.values()):
        time.sleep(2)
    alive = [process for process, _ in started.values() if process.poll() is None]
    for process in alive:
        process.terminate()
    if alive:
        time.sleep(5)  # a grace period before SIGKILL
    codes = {}
    for name, (process, log) in started.items():
        if process.poll() is None:
            process.kill()
        codes[name] = process.wait()
        log.close()
    return codes


def pack(out: Path, names: list[str], dest: Path, pack_mib: float) -> list[Path]:
    """Every run's log.csv, console log, best and latest weights into tar files of <= pack_mib."""
    files = []
    for name in names:
        files += [path for path in (out / name / "log.csv", out / f"{name}.log") if path.exists()]
        latest = out / name / "latest"
        kept = [out / name / "best"]  # the best val step's weights (pretrain keep_best=)
        if latest.exists():
            kept.append(out / name / json.loads(latest.read_text())["checkpoint"])
        files += [folder / file for folder in kept for file in WEIGHT_FILES
                  if (folder / file).exists()]
    chunks: list[list[Path]] = [[]]
    chunk_bytes = 0
    for path in files:
        size = path.stat().st_size
        if chunks[-1] and chunk_bytes + size > pack_mib * 2**20:
            chunks.append([])
            chunk_bytes = 0
        chunks[-1].append(path)
        chunk_bytes += size
    archives = [dest / f"runs-{i}.tar" for i in range(len(chunks))]
    for archive, chunk in zip(archives, chunks):
        with tarfile.open(archive, "w") as tar:
            for path in chunk:
                tar.add(path, arcname=str(path.relative_to(out)))
    return archives


def main() -> None:
    """Generate, run side by side until the deadline, tabulate and pack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the run folders go")
    parser.add_argument("--data", type=Path, required=True, help="the dataset (made if absent)")
    parser.add_argument("--dest", type=Path, help="where the table, plot and tars go (--out)")
    parser.add_argument("--episodes", type=int, default=800, help="episodes if generating")
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 2, 1),
                        help="generation processes")
    parser.add_argument("--deadline", type=float, default=420.0,
                        help="seconds from the start after which runs are stopped")
    parser.add_argument("--common", default="", help="overrides every run gets")
    parser.add_argument("--run", nargs=2, action="append", metavar=("NAME", "OVERRIDES"),
                        required=True, help="a run: its folder name and its own overrides")
    parser.add_argument("--pack-mib", type=float, default=15.0, help="size of each tar file")
    args = parser.parse_args()
    begun = time.time()
    dest = args.dest or args.out
    for folder in (args.out, dest):
        folder.mkdir(parents=True, exist_ok=True)
    generate(args.data, args.episodes, args.workers, args.out / "generate.log")
    print(f"data ready after {time.time() - begun:.0f} s", flush=True)
    runs = dict(args.run)
    codes = wait(launch(runs, args.common, args.data, args.out), begun + args.deadline)
    print(f"runs ended after {time.time() - begun:.0f} s: {codes}", flush=True)
    table = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "learning_curves.py"),
                            *(str(args.out / name) for name in runs),
                            "--png", str(dest / "curves.png")],
                           capture_output=True, text=True)
    (dest / "curves.md").write_text(table.stdout + table.stderr)
    print(table.stdout[-6000:] + table.stderr[-2000:], flush=True)
    for archive in pack(args.out, list(runs), dest, args.pack_mib):
        print(f"{archive.name}: {archive.stat().st_size / 2**20:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
