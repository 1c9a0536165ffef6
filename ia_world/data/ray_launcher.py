"""`generate launcher=ray`: one Ray task per shard, retried on failure, with a progress bar.

Each task produces its shard's episodes (annotations and previews included) and writes the shard
exactly as a local run does (`make_shard`), so the bytes do not depend on the launcher; the
shards are written atomically, so a killed run resumes like a local one. Every Ray node must see
the dataset directory (a shared filesystem) and have ia-world installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from ia_world.errors import ConfigError

INSTALL_HINT = 'launcher=ray needs Ray: pip install -e ".[ray]" (or pip install "ray[default]")'


def require_ray() -> Any:
    """The `ray` module; ConfigError with the install line when it is not installed."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def run_on_ray(make_shard: Callable[..., int], task: Any, shard_jobs: dict[int, list],
               identity: dict[str, Any], config: Any) -> None:
    """Run `make_shard(task, shard, jobs, identity)` as one Ray task per shard and wait for all.

    Joins the Ray instance this process already started, else `ray.init(config.address)`
    ("" starts a local one and shuts it down after). A task that raises or loses its worker
    runs again up to `config.max_retries` times; then its error is raised here.
    """
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.address or None, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=config.max_retries,
                            retry_exceptions=True)(make_shard)
        pending = [remote.remote(task, shard, jobs, identity)
                   for shard, jobs in shard_jobs.items()]
        with tqdm(total=len(pending), unit="shard", desc="generate (ray)") as progress:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)  # the task's error, after its retries
                progress.update(len(done))
    finally:
        if started:
            ray.shutdown()
