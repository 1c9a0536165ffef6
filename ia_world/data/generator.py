"""`ia-world generate`: simulate episodes in worker processes; write shards, annotations, previews.

Episode k is simulated with seed `episode_seed(seed, k)`; process `shard_index` of `num_shards`
writes the shards s with s % num_shards == shard_index, so split runs add up to a single run.
Complete shards (present and matching their checksum) are skipped: re-running resumes.
`launcher=ray` runs one Ray task per shard instead (ia_world/data/ray_launcher.py): the same
bytes, on a Ray cluster.
The workers also store each episode's saliency maps (`episode_saliency`) in its shard, so that
saliency masks cost no saliency computation at training time.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v3 as iio
from omegaconf import MISSING
from tqdm import tqdm

from envs import ENV_NAMES  # scene name -> id: the one table lives in envs
from ia_world.atomic import atomic_write, atomic_write_json, remove_stale_temps, to_json
from ia_world.config import as_dict, check_choice, check_path, check_range, validate_tree
from ia_world.data.annotation import annotation_path, video_filename, write_annotation
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.shards import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    READABLE_VERSIONS,
    check_shard,
    checksum_path,
    episode_seed,
    num_shard_files,
    read_manifest,
    shard_episodes,
    shard_metadata,
    shard_path,
    write_shard,
)
from ia_world.errors import ConfigError, DataError
from ia_world.formats import check_format_version
from ia_world.masking.saliency import STORED_PATCH, episode_saliency
from ia_world.parallel import ordered_map
from ia_world.runlock import LOCK_NAME, run_lock


@dataclass
class EnvConfig:
    """Which env to simulate, with its constructor kwargs (configs/env/<name>.yaml).

    `id` follows from a built-in `name`; an env of your own registered with Gymnasium takes any
    other name and its `id`.
    """

    name: str = "billiards"  # built-in scene (configs/env/<name>.yaml) or a name of your own
    id: str = ENV_NAMES["billiards"]  # registered Gymnasium id (follows from a built-in name)
    # the env constructor's keyword arguments (`+env.kwargs.k=v`)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.id == ENV_NAMES["billiards"] and self.name in ENV_NAMES:
            self.id = ENV_NAMES[self.name]  # the id of a built-in name, unless set otherwise

    def validate(self) -> None:
        """Raise ConfigError when name and id disagree or the id is not registered."""
        if self.name in ENV_NAMES and self.id != ENV_NAMES[self.name]:
            raise ConfigError(f"id={self.id!r} does not match name={self.name!r} "
                              f"(whose id is {ENV_NAMES[self.name]})")
        if self.id not in gym.registry:
            raise ConfigError(f"id={self.id!r} is not a registered Gymnasium env")


LAUNCHERS = ("local", "ray")


@dataclass
class RayConfig:
    """Where `launcher=ray` runs its tasks (one per shard), and how often one is retried."""

    address: str = ""  # "" = a Ray instance started on this machine; "auto" = the running cluster
    max_retries: int = 3  # times a failed shard task (error or lost worker) is run again

    def validate(self) -> None:
        """Raise ConfigError on a negative retry count."""
        check_range("max_retries", self.max_retries, 0, 100)


@dataclass
class GenerateConfig:
    """`ia-world generate`: which env, how many episodes of what size, where."""

    env: EnvConfig = field(default_factory=EnvConfig)
    out: str = MISSING  # dataset directory (dataset.json, shards/, annotations/, previews/)
    episodes: int = 8  # episodes in the whole dataset
    frames: int = 32  # frames per episode
    size: int = 64  # frame height = width in pixels
    shard_size: int = 128  # episodes per shard file
    seed: int = 0  # base seed: episode k is simulated with episode_seed(seed, k)
    workers: int = 1  # simulation processes ('spawn'); 1 = in-process
    shard_index: int = 0  # this process writes the shards s with s % num_shards == shard_index
    num_shards: int = 1  # processes (or machines) the shards are split over
    preview: int = 0  # write the first `preview` episodes as mp4 + gif under previews/
    launcher: str = "local"  # local: `workers` processes here; ray: one Ray task per shard
    ray: RayConfig = field(default_factory=RayConfig)  # launcher=ray only

    def validate(self) -> None:
        """Raise ConfigError on values out of range (or launcher=ray without Ray installed)."""
        check_choice("launcher", self.launcher, LAUNCHERS)
        if self.launcher == "ray":
            from ia_world.data.ray_launcher import require_ray
            require_ray()
        check_path("out", self.out)
        check_range("episodes", self.episodes, 1, 10**8)
        check_range("frames", self.frames, 2, 100_000)
        check_range("size", self.size, 16, 512)
        check_range("shard_size", self.shard_size, 1, 100_000)
        check_range("workers", self.workers, 1, 256)
        check_range("num_shards", self.num_shards, 1, 100_000)
        check_range("shard_index", self.shard_index, 0, self.num_shards - 1)
        check_range("preview", self.preview, 0, self.episodes)


@dataclass(frozen=True)
class EpisodeTask:
    """What a worker needs to produce one episode's files (picklable for 'spawn' workers)."""

    root: str
    env_id: str
    env_kwargs_json: str
    size: int
    frames: int
    preview: int


def dataset_identity(cfg: GenerateConfig) -> dict[str, Any]:
    """The manifest: every setting that changes the dataset's bytes (as JSON reads it back)."""
    return json.loads(json.dumps({
        "format_version": FORMAT_VERSION, "env": as_dict(cfg.env), "frames": cfg.frames,
        "size": cfg.size, "seed": cfg.seed, "episodes": cfg.episodes,
        "shard_size": cfg.shard_size,
        "num_shard_files": num_shard_files(cfg.episodes, cfg.shard_size)}, default=to_json))


def ensure_manifest(root: Path, cfg: GenerateConfig) -> dict[str, Any]:
    """Write dataset.json, or refuse when the directory holds a dataset of another config;
    returns the manifest. A dataset keeps the format version it was started with."""
    wanted = dataset_identity(cfg)
    path = root / MANIFEST_NAME
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except ValueError as error:
            raise DataError(f"{path}: unreadable manifest ({error})") from None
        if not isinstance(found, dict):
            raise DataError(f"{path}: expected a JSON object, got {type(found).__name__}")
        wanted["format_version"] = check_format_version(path, found.get("format_version"),
                                                        READABLE_VERSIONS)
        changed = [f"{key}: {found.get(key)!r} there, {value!r} now"
                   for key, value in wanted.items() if found.get(key) != value]
        if changed:
            raise ConfigError(f"{path} was generated with another config ({'; '.join(changed)});"
                              " use a new out= or the same settings to resume")
        return wanted
    atomic_write_json(path, wanted)
    return wanted


@functools.cache
def cached_env(env_id: str, env_kwargs_json: str, size: int, frames: int) -> gym.Env:
    """One env per process, built inside the worker (PyBullet clients cannot cross a fork)."""
    return make_env(env_id, size=size, max_steps=frames, **json.loads(env_kwargs_json))


def preview_paths(root: str | Path, k: int) -> tuple[Path, Path]:
    """The mp4 and gif preview of episode k."""
    mp4 = Path(root) / "previews" / video_filename(k)
    return mp4, mp4.with_suffix(".gif")


def write_previews(root: str | Path, episode: Episode, k: int) -> None:
    """Write episode k as mp4 (imageio-ffmpeg) and looping gif, each atomically."""
    fps = float(episode.meta.get("fps", 30.0))
    mp4, gif = preview_paths(root, k)
    atomic_write(mp4, lambda temp: iio.imwrite(temp, episode.frames, fps=fps,
                                               macro_block_size=1))
    atomic_write(gif, lambda temp: iio.imwrite(temp, episode.frames,
                                               duration=1000.0 / fps, loop=0))


def produce_episode(task: EpisodeTask, job: tuple[int, int]) -> tuple[int, Episode]:
    """Simulate episode k with its seed, write its annotation (and previews); return it."""
    k, seed = job
    env = cached_env(task.env_id, task.env_kwargs_json, task.size, task.frames)
    episode = simulate_episode(env, seed, task.frames)
    if task.size % STORED_PATCH == 0 and task.frames >= 3:
        episode.saliency = episode_saliency(episode.frames)
    write_annotation(task.root, episode, k)
    if k < task.preview:
        write_previews(task.root, episode, k)
    return k, episode


def check_env_kwargs(cfg: GenerateConfig) -> None:
    """Build the env once (cached for the in-process worker): ConfigError on bad env.kwargs."""
    try:
        cached_env(cfg.env.id, json.dumps(cfg.env.kwargs, sort_keys=True), cfg.size, cfg.frames)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"env.kwargs of {cfg.env.id}: {error}".splitlines()[0]) from None


def pending_shards(root: Path, shards: list[int], manifest: dict[str, Any]) -> list[int]:
    """The shards among `shards` that are not on disk complete, intact and of this manifest."""
    pending = []
    for shard in shards:
        path = shard_path(root, shard)
        if not path.is_file():
            pending.append(shard)
            continue
        try:
            check_shard(path, manifest, shard)
        except DataError as error:
            tqdm.write(f"generate: {error}; generating it again")
            pending.append(shard)
    return pending


def clear_temps(root: Path, shards: list[int], cfg: GenerateConfig) -> None:
    """Remove what a killed run left half-written for the given shards (whose writers ended)."""
    episodes = [k for s in shards for k in shard_episodes(s, cfg.episodes, cfg.shard_size)]
    shard_files = {shard_path(root, s) for s in shards}
    remove_stale_temps(root / "shards", {p.name for p in shard_files}
                       | {checksum_path(p).name for p in shard_files})
    remove_stale_temps(root / "annotations", {annotation_path(root, k).name for k in episodes})
    remove_stale_temps(root / "previews", {p.name for k in episodes
                                           for p in preview_paths(root, k)})


def summarize(root: Path, shards: list[int], new_frames: int, seconds: float) -> dict[str, Any]:
    """Totals over the given shards (read from their headers) plus this run's throughput."""
    totals = {"episodes": 0, "with_collision": 0, "collisions": 0, "frames": 0}
    for shard in shards:
        for key, value in shard_metadata(shard_path(root, shard))["summary"].items():
            totals[key] += value
    episodes = max(totals["episodes"], 1)
    return {**totals, "collision_share": totals["with_collision"] / episodes,
            "collisions_per_episode": totals["collisions"] / episodes,
            "new_frames": new_frames, "seconds": seconds,
            "frames_per_s": new_frames / seconds if seconds > 0 else 0.0}


def make_shard(task: EpisodeTask, shard: int, jobs: list[tuple[int, int]],
               identity: dict[str, Any]) -> int:
    """Produce the episodes `jobs` in this process and write them as shard `shard` of the
    dataset `identity` (its manifest: the shard's format version and stored identity)."""
    write_shard(shard_path(task.root, shard), [produce_episode(task, job) for job in jobs],
                identity["format_version"], identity)
    return shard


def write_shards(root: Path, cfg: GenerateConfig, shards: list[int],
                 identity: dict[str, Any]) -> int:
    """Simulate and write the given shards of the dataset `identity` (its manifest; their
    annotations and previews too), here or on Ray (`cfg.launcher`), each shard replaced in one
    rename; returns the number of episodes simulated."""
    task = EpisodeTask(str(root), cfg.env.id, json.dumps(cfg.env.kwargs, sort_keys=True),
                       cfg.size, cfg.frames, cfg.preview)
    shard_jobs = {s: [(k, episode_seed(cfg.seed, k))
                      for k in shard_episodes(s, cfg.episodes, cfg.shard_size)] for s in shards}
    if cfg.launcher == "ray":
        from ia_world.data.ray_launcher import run_on_ray
        run_on_ray(make_shard, task, shard_jobs, identity, cfg.ray)
    else:
        generate_local(task, shard_jobs, identity, cfg.workers)
    return sum(map(len, shard_jobs.values()))


def generate_lock(cfg: GenerateConfig) -> str:
    """The lock file of this process's share: split runs (`num_shards` > 1) write side by side."""
    split = f"-{cfg.shard_index}-of-{cfg.num_shards}" if cfg.num_shards > 1 else ""
    return LOCK_NAME + split


def generate(cfg: GenerateConfig) -> Path:
    """Generate (or finish) this process's share of the dataset; returns the dataset directory.

    `out=` is checked writable and locked (one writer per share) before any work. Prints a
    summary line (episodes, collision share, throughput); `dataset_stats` reads it back.
    """
    validate_tree(cfg)
    check_env_kwargs(cfg)  # before anything is written, out= included
    with run_lock(cfg.out, name=generate_lock(cfg)):
        return generate_share(cfg)


def generate_share(cfg: GenerateConfig) -> Path:
    """The work of `generate` on a validated config, its `out=` held."""
    root = Path(cfg.out)
    manifest = ensure_manifest(root, cfg)  # a resumed dataset keeps its format version
    owned = [s for s in range(num_shard_files(cfg.episodes, cfg.shard_size))
             if s % cfg.num_shards == cfg.shard_index]
    todo = pending_shards(root, owned, manifest)
    start = time.perf_counter()
    new = write_shards(root, cfg, todo, manifest)
    # after the work, not before: a killed Ray driver's workers outlive it for a moment, so
    # their half-written files may still have a live writer when this run starts
    clear_temps(root, owned, cfg)
    summary = summarize(root, owned, new * cfg.frames, time.perf_counter() - start)
    print(f"generate: {summary['episodes']} episodes in {root} ({new} new), "
          f"{summary['collision_share']:.0%} with >= 1 collision, "
          f"{summary['collisions_per_episode']:.2f} collisions per episode, "
          f"{summary['frames_per_s']:.0f} frames/s")
    return root


def generate_local(task: EpisodeTask, shard_jobs: dict[int, list[tuple[int, int]]],
                   identity: dict[str, Any], workers: int) -> None:
    """Produce the shards' episodes in `workers` processes, writing each shard of the dataset
    `identity` (make_shard) when complete."""
    jobs = [job for shard in shard_jobs.values() for job in shard]
    last_of_shard = {shard[-1][0]: s for s, shard in shard_jobs.items()}
    done: list[tuple[int, Episode]] = []
    with ordered_map(workers) as episodes_in_order:
        results = episodes_in_order(functools.partial(produce_episode, task), jobs)
        for k, episode in tqdm(results, total=len(jobs), unit="episode", desc="generate"):
            done.append((k, episode))
            if k in last_of_shard:
                write_shard(shard_path(task.root, last_of_shard[k]), done,
                            identity["format_version"], identity)
                done = []


def dataset_stats(root: str | Path) -> dict[str, Any]:
    """Episode and collision totals of a generated dataset (from its shard headers)."""
    manifest = read_manifest(root)
    shards = range(num_shard_files(manifest["episodes"], manifest["shard_size"]))
    return summarize(Path(root), list(shards), 0, 0.0)
