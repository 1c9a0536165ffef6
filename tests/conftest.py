"""Shared pytest setup: one torch thread per test process (CI has 2 cores), and the tiny
artifacts many tests read, built once per test run (`scope="session"`; treat them as read-only:
copy one to tamper with it).

Fast inner loop: `pytest -q -n auto -m "not slow"`; everything (what CI runs): `pytest -q -n auto`
(pytest-xdist: one test process per core, each building its own session artifacts).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# the world model the latent-agent tests plan with: a few placements, a few steps
TINY_WORLD_MODEL = ["episodes=8", "test_episodes=4", "workers=1", "windows=3", "probe_steps=5",
                    "world_model.steps=3", "world_model.batch_size=4",
                    "world_model.rollout_steps=1"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A freshly initialised `tiny` IA-JEPA checkpoint (16 frames of 64x64, seed 0)."""
    from ia_world.checkpoint import write_initial_checkpoint

    return write_initial_checkpoint(tmp_path_factory.mktemp("tiny_checkpoint"), "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory) -> Path:
    """Small Billiards datasets of one shard per episode, 3 episodes of 6 frames each:
    `a` (32 px, seed 0), `other_seed` (32 px, seed 1) and `px64` (64 px, seed 0)."""
    from ia_world.data.generator import GenerateConfig, generate

    root = tmp_path_factory.mktemp("tiny_datasets")
    for name, seed, size in [("a", 0, 32), ("other_seed", 1, 32), ("px64", 0, 64)]:
        generate(GenerateConfig(out=str(root / name), episodes=3, frames=6, size=size,
                                shard_size=1, seed=seed))
    return root


@pytest.fixture
def tiny_dataset(tiny_datasets, tmp_path) -> Path:
    """A fresh copy of tiny dataset `a` to tamper with."""
    return Path(shutil.copytree(tiny_datasets / "a", tmp_path / "a"))


@pytest.fixture(scope="session")
def tiny_world_model(tiny_checkpoint, tmp_path_factory) -> Path:
    """A latent world model + goal probes on `tiny_checkpoint`'s encoder (cross fold 0)."""
    from agents.world_model import train_stage
    from ia_world_app.cli import parse

    out = tmp_path_factory.mktemp("tiny_world_model") / "wm"
    return train_stage(parse("world_model", [f"encoder={tiny_checkpoint}", f"out={out}",
                                             *TINY_WORLD_MODEL]))
