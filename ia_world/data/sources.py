"""Where pretraining clips come from: `data.source` as a typed choice, dispatched in one place.

`DataConfig` is the `data` config group (configs/data/<source>.yaml); `clip_dataset` builds the
map-style dataset of a file source (shards, CLEVRER, SSv2 or a weighted mix of them), `live`
streams fresh simulations (ia_world.data.live); `pretraining_seeds` says which simulator episode
seeds a source can have shown, so evaluation splits can be checked disjoint from them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from ia_world.config import check_range
from ia_world.data.clevrer import clevrer_clips
from ia_world.data.clips import ClipDataset
from ia_world.data.mix import MixedClips
from ia_world.data.shards import EpisodeStore, episode_seed, read_manifest
from ia_world.data.ssv2 import ssv2_clips
from ia_world.errors import ConfigError, DataError

LIVE_LOOKAHEAD_STEPS = 64  # batches a live loader may simulate beyond the last step


class DataSource(str, enum.Enum):
    """The kinds of clip source (`data=<source>`)."""

    live = "live"  # episodes simulated on the fly in the DataLoader workers
    shards = "shards"  # a generated shard directory (`data=<dir>`)
    clevrer = "clevrer"  # CLEVRER videos (train split)
    ssv2 = "ssv2"  # Something-Something V2 webm videos (train split)
    mix = "mix"  # a weighted mixture of shards, CLEVRER and SSv2


FILE_SOURCES = (DataSource.shards, DataSource.clevrer, DataSource.ssv2)


@dataclass
class DataConfig:
    """Where clips come from: live simulation of `env`, shards, CLEVRER, SSv2 or a mix."""

    source: DataSource = DataSource.live  # live | shards | clevrer | ssv2 | mix (`data=<source>`)
    path: str | None = None  # dataset root of shards / clevrer / ssv2
    frame_stride: int = 1  # shards and live: source frames per clip frame
    clips_per_episode: int = 4  # shards: evenly spaced clips taken from each episode
    num_workers: int = 2  # DataLoader workers (decoding, simulation and masks run there)
    fps: float | None = None  # video sources: clip frame rate (None: native)
    skip_bad: bool = False  # video sources: check every file first, skip unreadable ones
    paths: dict[str, str | None] = field(default_factory=dict)  # mix: source -> root
    weights: dict[str, float] = field(default_factory=dict)  # mix: source -> weight

    def validate(self) -> None:
        """Raise ConfigError on a missing path, bad mix weights or out-of-range values."""
        if self.source in FILE_SOURCES and not self.path:
            raise ConfigError(f"path is required for source={self.source.value} (data=<dir>)")
        check_range("frame_stride", self.frame_stride, 1, 1000)
        check_range("clips_per_episode", self.clips_per_episode, 1, 10_000)
        check_range("num_workers", self.num_workers, 0, 256)
        if self.fps is not None:
            check_range("fps", self.fps, 0.1, 1000.0)
        known = {s.value for s in FILE_SOURCES}
        for name, weight in self.weights.items():
            if name not in known:
                raise ConfigError(f"weights.{name}: unknown source (one of {sorted(known)})")
            check_range(f"weights.{name}", weight, 0.0, 1e6)
        if self.source == DataSource.mix and not any(w > 0 for w in self.weights.values()):
            raise ConfigError("weights: a mix needs a source with weight > 0")


def source_clips(source: DataSource, path: str, frames: int, size: int, frame_stride: int = 1,
                 clips_per_episode: int = 1, fps: float | None = None, seed: int = 0,
                 skip_bad: bool = False) -> Dataset:
    """The clip dataset of one file source: shards (frame_stride), CLEVRER or SSv2 (fps)."""
    match DataSource(source):
        case DataSource.shards:
            store = EpisodeStore(path)
            try:  # here, not in a DataLoader worker
                store.check_clips((frames - 1) * frame_stride + 1, size)
            except DataError as error:
                longest = (store.manifest["frames"] - 1) // frame_stride + 1
                raise DataError(f"{error}: pretrain with model.size={store.manifest['size']} "
                                f"and model.frames <= {longest}") from None
            return ClipDataset(store, frames, frame_stride, clips_per_episode)
        case DataSource.clevrer:
            return clevrer_clips(path, "train", frames, size, fps, seed=seed, skip_bad=skip_bad)
        case DataSource.ssv2:
            return ssv2_clips(path, "train", frames, size, fps, seed=seed, skip_bad=skip_bad)
    raise ConfigError(f"data source {source!r} is not a file source")


def mixed_clips(paths: dict[str, str], weights: dict[str, float], frames: int, size: int,
                frame_stride: int = 1, clips_per_episode: int = 1, fps: float | None = None,
                seed: int = 0, skip_bad: bool = False, length: int | None = None) -> MixedClips:
    """The mixture of the sources named in `paths` (source -> dataset root) with `weights`."""
    missing = [name for name, weight in weights.items() if weight > 0 and not paths.get(name)]
    if missing:
        raise ConfigError(f"data.paths.{missing[0]} is required: its weight is above 0")
    sources = {name: source_clips(name, path, frames, size, frame_stride, clips_per_episode, fps,
                                  seed, skip_bad)
               for name, path in paths.items() if weights.get(name, 0) > 0}
    return MixedClips(sources, weights, length, seed)


def clip_dataset(data: DataConfig, frames: int, size: int, seed: int) -> Dataset:
    """The map-style clip dataset of a file source or a mix (not `live`)."""
    if data.source == DataSource.mix:
        return mixed_clips(data.paths, data.weights, frames, size, data.frame_stride,
                           data.clips_per_episode, data.fps, seed, data.skip_bad)
    return source_clips(data.source, data.path, frames, size, data.frame_stride,
                        data.clips_per_episode, data.fps, seed, data.skip_bad)


def pretraining_seeds(config: dict) -> set[int]:
    """Simulator episode seeds a checkpoint's pretraining could have seen (its config.json).

    Live data: the seeds of every clip the run drew (plus loader look-ahead); shards (alone or
    in a mix with weight > 0): the dataset's seeds; CLEVRER and SSv2 are not simulated: none.
    """
    data = config.get("data")
    if not data:
        return set()
    source = DataSource(data.get("source", "live"))
    if source == DataSource.live:
        count = (config["steps"] + LIVE_LOOKAHEAD_STEPS) * config["batch_size"]
        return {episode_seed(config["seed"], k) for k in range(count)}
    roots = {DataSource.shards: [data.get("path")],
             DataSource.mix: [(data.get("paths") or {}).get("shards")]
             if (data.get("weights") or {}).get("shards", 0) > 0 else []}.get(source, [])
    seeds = set()
    for root in filter(None, roots):
        manifest = read_manifest(root)
        seeds |= {episode_seed(manifest["seed"], k) for k in range(manifest["episodes"])}
    return seeds
