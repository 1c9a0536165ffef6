"""Hardening III: one writer per run directory, fail before the work, names are names, env
kwargs validated, and the remaining bad inputs end in one line naming the file."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ia_world import cli, training
from ia_world.checkpoint import MODEL_FILE, resolve_checkpoint
from ia_world.runlock import LOCK_NAME

SMALL = ["model.frames=4", "model.size=32", "model.embed_dim=24", "model.depth=1",
         "model.num_heads=2", "model.pred_dim=12", "model.pred_depth=1", "model.pred_heads=2",
         "masking=random_tube", "data.num_workers=0", "batch_size=2", "warmup_steps=1",
         "log_every=1", "device=cpu", "steps=2"]
PAUSED_PRETRAIN = """
import sys, time
from pathlib import Path
from ia_world import cli, training
loop = training.pretrain_loop
def paused(*args, **kwargs):  # holds the lock until the test says go
    while not Path(sys.argv[1]).exists():
        time.sleep(0.05)
    return loop(*args, **kwargs)
training.pretrain_loop = paused
sys.exit(cli.main(["pretrain", *sys.argv[2:]]))
"""


def env_with_path() -> dict[str, str]:
    """The environment of a child process that imports this worktree's code."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def loss_columns(run: Path) -> list[str]:
    """log.csv without its timing columns (clips_per_s, data_s, compute_s)."""
    return [",".join(line.split(",")[:7]) for line in (run / training.LOG_FILE).read_text()
            .splitlines()]


@pytest.mark.slow  # three pretraining processes (~15 s idle, more on a loaded machine)
def test_second_pretrain_on_one_out_stops_with_one_line_and_the_first_is_unharmed(tmp_path):
    shared, lone, go = tmp_path / "shared", tmp_path / "lone", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", PAUSED_PRETRAIN, str(go), *SMALL,
                              f"out={shared}"], env=env_with_path(), stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((shared / LOCK_NAME).is_file()
                   and (shared / LOCK_NAME).read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "ia_world.cli", "pretrain", *SMALL,
                                 f"out={shared}"], env=env_with_path(), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"pid {first.pid}" in err[0] and str(shared) in err[0], err
        assert not (shared / training.LOG_FILE).exists()  # the second wrote nothing
    finally:
        go.touch()
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert cli.main(["pretrain", *SMALL, f"out={lone}"]) == 0
    assert ((resolve_checkpoint(shared) / MODEL_FILE).read_bytes()
            == (resolve_checkpoint(lone) / MODEL_FILE).read_bytes())
    assert loss_columns(shared) == loss_columns(lone)
    assert not [p for p in shared.rglob(".tmp-*")]  # no temporaries left behind
