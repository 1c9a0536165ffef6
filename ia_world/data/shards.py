"""Episode shards on disk: safetensors files of episodes, a manifest, checksums, and the reader.

Layout of a dataset directory:
    dataset.json                          manifest (written first; the dataset's identity)
    shards/shard-00000.safetensors        episodes 0 .. shard_size-1
    shards/shard-00000.sha256             sha256sum-style checksum of the shard file
A shard holds, per episode k (global index), the arrays `{k}/frames` uint8 (T, H, W, 3),
`{k}/{state}` float64 (T, K, d) for each state key and `{k}/energy/{term}` float64 (T,); the
objects, collisions and meta of every episode are JSON in the safetensors metadata. Shards
written since the saliency was stored also hold `{k}/saliency/{name}` float32 (T, H/8, W/8) per
saliency strategy (ia_world.masking.saliency.episode_saliency); older shards lack them and read
as before. Every file is
written to a temporary name and renamed when complete, the checksum before its shard.

Format versions (`format_version` in dataset.json and in every shard header; one reader each):
1 stores every array as a raw safetensors tensor; 2 (written now) stores every array as a
zstd frame (level ZSTD_LEVEL, one thread: deterministic bytes; with a content checksum) in a
uint8 tensor of the same name, its dtype and shape in the header's "arrays" table. A 64 px
episode shrinks ~20x (docs/results/data-at-scale.md).
A dataset keeps the version it was started with: resuming or repairing a version-1 dataset
writes version-1 shards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zstandard
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_safetensors

from ia_world.atomic import atomic_write_bytes, atomic_write_json, to_json
from ia_world.data.episode import Episode
from ia_world.errors import DataError
from ia_world.formats import DATASET_VERSION, check_format_version

FORMAT_VERSION = DATASET_VERSION  # what `generate` writes for a new dataset (2)
READABLE_VERSIONS = (1, 2)  # the versions the readers below read (READERS)
ZSTD_LEVEL = 3  # 20x on Billiards frames at ~1 ms per episode (docs/results/data-at-scale.md)
ARRAY_DTYPES = ("uint8", "float32", "float64")  # what a version-2 "arrays" table may name
MANIFEST_NAME = "dataset.json"
SHARD_DIR = "shards"
HEADER_KEY = "ia_world"
# manifest keys every reader relies on, with their least valid value
MANIFEST_INTEGERS = {"episodes": 1, "shard_size": 1, "seed": 0, "frames": 1, "size": 1}


# ---- seeds, names, manifest ---------------------------------------------------------------------
def episode_seed(base_seed: int, k: int) -> int:
    """Seed of episode k: a SeedSequence hash of (base_seed, k), the same on every machine."""
    state = np.random.SeedSequence([int(base_seed), int(k)]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def shard_path(root: str | Path, shard: int) -> Path:
    """Path of shard number `shard` under a dataset root."""
    return Path(root) / SHARD_DIR / f"shard-{shard:05d}.safetensors"


def checksum_path(shard_file: Path) -> Path:
    """The sha256 sidecar of a shard file."""
    return shard_file.with_suffix(".sha256")


def num_shard_files(episodes: int, shard_size: int) -> int:
    """How many shards hold `episodes` episodes."""
    return -(-episodes // shard_size)


def shard_episodes(shard: int, episodes: int, shard_size: int) -> range:
    """Global indices of the episodes in shard number `shard`."""
    return range(shard * shard_size, min((shard + 1) * shard_size, episodes))


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of a dataset root; DataError naming the directory when there is none."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{root}: no episode dataset here (missing {MANIFEST_NAME})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    check_format_version(path, manifest.get("format_version"), READABLE_VERSIONS)
    for key, low in MANIFEST_INTEGERS.items():
        value = manifest.get(key)
        if type(value) is not int or value < low:
            raise DataError(f"{path}: {key} {value!r} is not an integer >= {low}")
    return manifest


# ---- one shard ----------------------------------------------------------------------------------
def shard_summary(episodes: list[Episode]) -> dict[str, int]:
    """Counts the generator reports: episodes, episodes with collisions, collisions, frames."""
    return {"episodes": len(episodes),
            "with_collision": sum(bool(ep.collisions) for ep in episodes),
            "collisions": sum(len(ep.collisions) for ep in episodes),
            "frames": sum(ep.num_frames for ep in episodes)}


def compress_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Version-2 storage: each array as a uint8 zstd frame, and the {name: [dtype, shape]} table."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
    frames = {name: np.frombuffer(compressor.compress(value.tobytes()), np.uint8)
              for name, value in arrays.items()}
    return frames, {name: [value.dtype.name, list(value.shape)] for name, value in arrays.items()}


def encode_shard(episodes: list[tuple[int, Episode]], version: int = FORMAT_VERSION,
                 dataset: dict[str, Any] | None = None) -> bytes:
    """The safetensors bytes of a shard holding (global index, episode) pairs, in format
    `version` (1: raw tensors, 2: zstd-compressed arrays); `dataset` (the manifest the shard
    belongs to) goes into its header, for `verify` to check dataset.json."""
    tensors: dict[str, np.ndarray] = {}
    records = []
    for k, ep in episodes:
        tensors[f"{k}/frames"] = np.ascontiguousarray(ep.frames, np.uint8)
        for key, value in ep.states.items():
            tensors[f"{k}/{key}"] = np.ascontiguousarray(value, np.float64)
        for term, value in (ep.energy or {}).items():
            tensors[f"{k}/energy/{term}"] = np.ascontiguousarray(value, np.float64)
        for name, value in (ep.saliency or {}).items():
            tensors[f"{k}/saliency/{name}"] = np.ascontiguousarray(value, np.float32)
        records.append({"index": k, "state_keys": list(ep.states),
                        "energy_terms": None if ep.energy is None else list(ep.energy),
                        "objects": ep.objects, "collisions": ep.collisions, "meta": ep.meta,
                        **({"saliency": list(ep.saliency)} if ep.saliency else {})})
    header = {"format_version": version,
              "summary": shard_summary([ep for _, ep in episodes]), "episodes": records,
              **({"dataset": dataset} if dataset is not None else {})}
    if version == 2:
        tensors, header["arrays"] = compress_arrays(tensors)
    # one metadata key: safetensors keeps metadata in a hash map whose order varies per process
    return save_safetensors(tensors, metadata={HEADER_KEY: json.dumps(header, default=to_json)})


def write_shard(path: str | Path, episodes: list[tuple[int, Episode]],
                version: int = FORMAT_VERSION, dataset: dict[str, Any] | None = None) -> None:
    """Write a shard (format `version`, `dataset` in its header: encode_shard) and its sha256
    sidecar atomically (sidecar first, shard renamed last)."""
    path = Path(path)
    data = encode_shard(episodes, version, dataset)
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(checksum_path(path), f"{digest}  {path.name}\n".encode())
    atomic_write_bytes(path, data)


def read_checksum(sidecar: Path) -> str:
    """The hex sha256 digest a sidecar holds; DataError naming it when missing or malformed."""
    if not sidecar.is_file():
        raise DataError(f"{sidecar}: checksum file missing")
    words = sidecar.read_bytes().split()
    digest = words[0].decode("ascii", "replace").lower() if words else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise DataError(f"{sidecar}: not a sha256 checksum file")
    return digest


def verify_shard(path: str | Path) -> None:
    """Raise DataError naming the file unless the shard matches its sha256 sidecar."""
    path = Path(path)
    sidecar = checksum_path(path)
    if not path.is_file():
        raise DataError(f"{path}: shard missing (re-run generate with the same config to resume)")
    expected = read_checksum(sidecar)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DataError(f"{path}: checksum mismatch (truncated or corrupt shard)")


def shard_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded header of a shard: episode records and summary (reads the header only)."""
    try:
        with safe_open(str(path), framework="np") as f:
            header = json.loads((f.metadata() or {})[HEADER_KEY])
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a readable episode shard ({error})") from None
    if not isinstance(header, dict):
        raise DataError(f"{path}: not a readable episode shard (header is not a JSON object)")
    return header


class RawArrays:
    """Format-version-1 reader: the arrays of an open shard are its safetensors tensors."""

    def __init__(self, handle, header: dict[str, Any], path: str | Path):
        self.handle = handle

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of array `key` (from the file's index, nothing decoded)."""
        return tuple(self.handle.get_slice(key).get_shape())

    def array(self, key: str) -> np.ndarray:
        """Array `key`."""
        return self.handle.get_tensor(key)


class ZstdArrays:
    """Format-version-2 reader: each array is a zstd frame in a uint8 tensor of its name, with
    its dtype and shape in the header's "arrays" table."""

    def __init__(self, handle, header: dict[str, Any], path: str | Path):
        self.handle, self.path = handle, path
        self.table = header.get("arrays")
        if not isinstance(self.table, dict):
            raise DataError(f"{path}: format-2 shard without its arrays table: corrupt shard "
                            "(generate it again)")
        self.decompressor = zstandard.ZstdDecompressor()

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of array `key` (from the header's table, nothing decoded)."""
        return tuple(self.table[key][1])

    def array(self, key: str) -> np.ndarray:
        """Array `key`, decompressed; DataError naming the shard when it does not decode to its
        table's dtype and shape."""
        dtype, shape = self.table[key]
        if dtype not in ARRAY_DTYPES or not all(type(n) is int and n >= 0 for n in shape):
            raise DataError(f"{self.path}: {key} is listed as {dtype} {shape}: corrupt shard "
                            "(generate it again)")
        size = np.dtype(dtype).itemsize * int(np.prod(shape))
        data = self.handle.get_tensor(key)
        try:
            if zstandard.frame_content_size(data) != size:
                raise zstandard.ZstdError(f"frame holds {zstandard.frame_content_size(data)} "
                                          f"bytes, {dtype} {shape} needs {size}")
            raw = self.decompressor.decompress(data)
        except zstandard.ZstdError as error:
            raise DataError(f"{self.path}: {key} does not decompress ({error}): corrupt shard "
                            "(generate it again)") from None
        return np.frombuffer(raw, dtype).reshape(shape).copy()  # writable, like version 1


READERS = {1: RawArrays, 2: ZstdArrays}  # format_version -> reader (READABLE_VERSIONS)


@contextmanager
def open_shard(path: str | Path, header: dict[str, Any] | None = None) -> Iterator[Any]:
    """The array reader of a shard's format version (`header`: its shard_metadata, if read)."""
    header = shard_metadata(path) if header is None else header
    version = check_format_version(path, header.get("format_version"), READABLE_VERSIONS)
    try:
        with safe_open(str(path), framework="np") as handle:
            yield READERS[version](handle, header, path)
    except (SafetensorError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: corrupt episode shard ({error!r})") from None


def decode_saliency(arrays, record: dict[str, Any], shape: tuple[int, ...],
                    path: str | Path) -> dict[str, np.ndarray] | None:
    """The stored saliency of one episode (None when its shard has none); DataError naming the
    shard when one is not float32 of `shape` (T, H/8, W/8), or not finite and >= 0."""
    names = record.get("saliency")
    if not names:
        return None
    stored = {}
    for name in names:
        value = arrays.array(f"{record['index']}/saliency/{name}")
        if value.dtype != np.float32 or value.shape != shape:
            raise DataError(f"{path}: episode {record['index']} has saliency {name} "
                            f"{value.dtype} {value.shape}, expected float32 {shape}: "
                            "corrupt shard (generate it again)")
        if not (np.isfinite(value).all() and (value >= 0).all()):
            raise DataError(f"{path}: episode {record['index']} has non-finite or negative "
                            f"saliency {name}: corrupt shard (generate it again)")
        stored[name] = value
    return stored


def saliency_shape(frames_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Shape of the stored saliency of an episode with frames (T, H, W, 3)."""
    from ia_world.masking.saliency import STORED_PATCH
    t, h, w = frames_shape[:3]
    return t, h // STORED_PATCH, w // STORED_PATCH


def check_finite(path: str | Path, k: int, frames: np.ndarray,
                 arrays: dict[str, np.ndarray]) -> None:
    """DataError naming the shard and episode unless the frames are uint8 and every state /
    energy array is finite (a NaN would surface later as a NaN loss or a scikit-learn error)."""
    if frames.dtype != np.uint8:
        raise DataError(f"{path}: episode {k} has {frames.dtype} frames, expected uint8: "
                        "corrupt shard (generate it again)")
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise DataError(f"{path}: episode {k} has non-finite {name}: corrupt shard "
                            "(generate it again)")


def decode_episode(arrays, record: dict[str, Any], path: str | Path = "shard") -> Episode:
    """Rebuild one Episode from a shard's array reader (open_shard) and its metadata record;
    DataError naming the shard and episode on non-finite ground truth or frames that are not
    uint8."""
    k = record["index"]
    terms = record["energy_terms"]
    frames = arrays.array(f"{k}/frames")
    states = {key: arrays.array(f"{k}/{key}") for key in record["state_keys"]}
    energy = None if terms is None else {t: arrays.array(f"{k}/energy/{t}") for t in terms}
    check_finite(path, k, frames, {**states, **{f"energy {t}": v
                                                for t, v in (energy or {}).items()}})
    return Episode(
        frames=frames,
        objects=record["objects"],
        states=states,
        energy=energy,
        collisions=record["collisions"],
        meta=record["meta"],
        saliency=decode_saliency(arrays, record, saliency_shape(frames.shape), path))


def read_shard(path: str | Path) -> list[Episode]:
    """All episodes of a shard, in order, after checking its checksum."""
    verify_shard(path)
    header = shard_metadata(path)
    with open_shard(path, header) as arrays:
        return [decode_episode(arrays, record, path) for record in header["episodes"]]


def check_shard(path: str | Path, manifest: dict[str, Any], shard: int) -> dict[str, Any]:
    """The header of shard number `shard` (its episode records under "episodes"), after checking
    its checksum and that it is this manifest's shard: format version, the episode indices,
    their seeds and their frame shape."""
    path = Path(path)
    verify_shard(path)
    expected = list(shard_episodes(shard, manifest["episodes"], manifest["shard_size"]))
    shape = (manifest["frames"], manifest["size"], manifest["size"], 3)
    header = shard_metadata(path)
    if header.get("format_version") != manifest["format_version"]:
        raise DataError(f"{path}: format_version {header.get('format_version')!r}, the manifest "
                        f"says {manifest['format_version']}: another dataset's shard")
    try:
        changed = identity_mismatch(header, manifest)
        if changed:
            raise DataError(f"{path}: generated for a dataset with other {', '.join(changed)} "
                            "than this manifest: an edited manifest or another dataset's shard")
        records = header["episodes"]
        indices = [record["index"] for record in records]
        if indices != expected:
            raise DataError(f"{path}: holds episodes {indices[:1]}..{indices[-1:]}, the manifest "
                            f"(shard_size {manifest['shard_size']}) puts {expected[0]}.."
                            f"{expected[-1]} here: an edited manifest or another dataset's shard")
        with open_shard(path, header) as arrays:
            for record in records:
                k, seed = record["index"], record["meta"].get("seed")
                if seed != episode_seed(manifest["seed"], k):
                    raise DataError(f"{path}: episode {k} has seed {seed}, not the manifest's "
                                    f"episode_seed({manifest['seed']}, {k}): another dataset's "
                                    "shard")
                found = arrays.shape(f"{k}/frames")
                if found != shape:
                    raise DataError(f"{path}: episode {k} has frames {found}, the manifest says "
                                    f"{shape}: another dataset's shard")
                for name in record.get("saliency") or []:
                    stored = arrays.shape(f"{k}/saliency/{name}")
                    if stored != saliency_shape(shape):
                        raise DataError(f"{path}: episode {k} has saliency {name} of shape "
                                        f"{stored}, expected {saliency_shape(shape)}: corrupt "
                                        "shard (generate it again)")
    except (KeyError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: malformed episode records ({error!r})") from None
    return header


def identity_mismatch(header: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Manifest keys whose value differs from the dataset identity stored in a shard's header
    (none for shards written before the identity was stored)."""
    stored = header.get("dataset")
    if not isinstance(stored, dict):
        return []
    return [key for key in sorted(set(stored) | set(manifest))  # strict: 1 != 1.0 != true
            if json.dumps(stored.get(key), sort_keys=True)
            != json.dumps(manifest.get(key), sort_keys=True)]


# ---- a whole dataset ----------------------------------------------------------------------------
class EpisodeStore:
    """Random access to a generated dataset: `len(store)`, `store[i] -> Episode`.

    Shards are opened lazily (memory-mapped by safetensors) and checksummed on first use.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.shard_size = int(self.manifest["shard_size"])
        self.num_episodes = int(self.manifest["episodes"])
        count = num_shard_files(self.num_episodes, self.shard_size)
        missing = [shard_path(self.root, s) for s in range(count)
                   if not shard_path(self.root, s).is_file()]
        if missing:
            raise DataError(f"{missing[0]}: shard missing ({len(missing)} of {count} missing; "
                            "re-run generate with the same config to resume)")
        self._headers: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.num_episodes

    def seed_of(self, i: int) -> int:
        """The simulation seed of episode i."""
        return episode_seed(self.manifest["seed"], i)

    def check_clips(self, frames: int, size: int) -> None:
        """Raise DataError naming the dataset unless its episodes hold `frames` frames of
        `size` x `size` (checked on the manifest, before any worker reads a shard)."""
        have = (self.manifest["frames"], self.manifest["size"])
        if have[0] < frames or have[1] != size:
            raise DataError(f"{self.root}: episodes of {have[0]} frames of {have[1]}x{have[1]}, "
                            f"the model needs {frames} frames of {size}x{size}")

    def _shard_header(self, shard: int) -> dict[str, Any]:
        if shard not in self._headers:
            self._headers[shard] = check_shard(shard_path(self.root, shard), self.manifest, shard)
        return self._headers[shard]

    def __getitem__(self, i: int) -> Episode:
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range [0, {self.num_episodes})")
        i %= self.num_episodes
        shard, offset = divmod(i, self.shard_size)
        header = self._shard_header(shard)
        path = shard_path(self.root, shard)
        with open_shard(path, header) as arrays:
            return decode_episode(arrays, header["episodes"][offset], path)


def rewrite_dataset(root: str | Path, version: int) -> None:
    """Rewrite every shard of a dataset in format `version` (e.g. compress a format-1 dataset),
    each shard atomically, then its manifest; the episodes read back unchanged, and each shard's
    stored dataset identity changes only in its format_version."""
    root = Path(root)
    manifest = read_manifest(root)
    check_format_version(root / MANIFEST_NAME, version, READABLE_VERSIONS)
    for shard in range(num_shard_files(manifest["episodes"], manifest["shard_size"])):
        path = shard_path(root, shard)
        indices = shard_episodes(shard, manifest["episodes"], manifest["shard_size"])
        stored = shard_metadata(path).get("dataset")
        dataset = dict(stored, format_version=version) if isinstance(stored, dict) else None
        write_shard(path, list(zip(indices, read_shard(path))), version, dataset)
    atomic_write_json(root / MANIFEST_NAME, dict(manifest, format_version=version))


def load_episodes(root: str | Path) -> Iterator[Episode]:
    """Stream every episode of a generated dataset, in order, shard by shard."""
    store = EpisodeStore(root)  # fails here, not at the first next(), on a bad root
    return (store[i] for i in range(len(store)))
