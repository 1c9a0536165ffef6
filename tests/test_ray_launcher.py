"""`generate launcher=ray` on a local Ray instance: a local run's bytes, resumed after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import shard_path
from ia_world.data.verify import verify
from ia_world_app import cli

ray = pytest.importorskip("ray")

ARGS = ["episodes=6", "shard_size=2", "frames=6", "size=32", "seed=4"]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root -> its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def written(root: Path) -> list[Path]:
    """The finished shards of the dataset at root (temp files are not shards yet)."""
    return [p for p in (shard_path(root, k) for k in range(48)) if p.exists()]


@pytest.fixture(scope="module")
def cluster():
    """A local 2-CPU Ray instance (its GCS address), shut down after the module."""
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local") / "data"
    assert cli.main(["generate", *ARGS, f"out={root}"]) == 0
    return root


@pytest.mark.slow  # ~10 s: Ray starts worker processes
def test_ray_run_writes_the_bytes_of_a_local_run(cluster, local, tmp_path):
    out = tmp_path / "ray"
    assert cli.main(["generate", *ARGS, f"out={out}", "launcher=ray"]) == 0
    assert tree(out) == tree(local)
    assert verify(out)["bad"] == {} and verify(local)["bad"] == {}


@pytest.mark.slow
def test_killed_ray_run_resumes_to_the_same_bytes(cluster, tmp_path):
    # 48 one-episode shards: the driver is killed within 10 ms of its first finished shard (Ray
    # need not finish them in order), long before two Ray workers can finish the other 47
    args = ["episodes=48", "shard_size=1", "frames=6", "size=32"]
    out, reference = tmp_path / "killed", tmp_path / "local"
    driver = subprocess.Popen(
        [sys.executable, "-m", "ia_world_app.cli", "generate", *args, f"out={out}",
         "launcher=ray", f"ray.address={cluster}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not written(out) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert 0 < len(written(out)) < 48
    assert cli.main(["generate", *args, f"out={out}", "launcher=ray",
                     f"ray.address={cluster}"]) == 0
    assert cli.main(["generate", *args, f"out={reference}"]) == 0
    assert tree(out) == tree(reference)
    assert verify(out)["bad"] == {}


@pytest.mark.slow
def test_failed_shard_task_is_retried(cluster, local, tmp_path, monkeypatch):
    from ia_world.data import generator

    flag = tmp_path / "failed-once"
    make_shard = generator.make_shard

    def fails_once(task, shard, jobs, identity):
        if shard == 1 and not flag.exists():
            flag.touch()
            os._exit(1)  # the worker process dies mid-task
        return make_shard(task, shard, jobs, identity)

    monkeypatch.setattr(generator, "make_shard", fails_once)
    out = tmp_path / "retried"
    generate(GenerateConfig(out=str(out), episodes=6, shard_size=2, frames=6, size=32, seed=4,
                            launcher="ray"))
    assert flag.exists() and tree(out) == tree(local)


def test_without_ray_the_option_is_one_line_naming_the_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert cli.main(["generate", *ARGS, f"out={tmp_path / 'x'}", "launcher=ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install -e ".[ray]"' in err[0]
    assert not (tmp_path / "x").exists()
