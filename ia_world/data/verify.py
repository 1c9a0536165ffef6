"""`ia-world verify <dataset dir> [--repair]`: check a generated dataset shard by shard.

Every shard is checked against its sha256 sidecar; every intact shard's header against the
manifest (the dataset identity the shard was written for: env, seed, size, frames, shard size,
episode count; for older shards the episode indices, seeds, frame shape and env id), its
episodes for non-finite ground truth, and every episode's annotation against the one its shard
gives. The manifest is *proven* when more intact shards agree with it than disagree (at least
one). `repair=true` then generates the bad shards again (deterministic: the repaired dataset
equals a clean run) and touches nothing else; with the manifest in doubt it refuses, changing
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from ia_world.atomic import to_json
from ia_world.config import check_path, to_dataclass, validate_tree
from ia_world.data.annotation import annotation_path, episode_annotation
from ia_world.data.generator import (
    GenerateConfig,
    check_env_kwargs,
    dataset_identity,
    write_shards,
)
from ia_world.data.shards import (
    MANIFEST_NAME,
    check_shard,
    decode_episode,
    identity_mismatch,
    num_shard_files,
    open_shard,
    read_manifest,
    shard_metadata,
    shard_path,
    verify_shard,
)
from ia_world.errors import DataError
from ia_world.runlock import run_lock


@dataclass
class VerifyConfig:
    """`ia-world verify`: which dataset, and whether to generate its bad shards again."""

    path: str = MISSING  # dataset directory written by `ia-world generate`
    repair: bool = False  # generate the bad shards again (deterministic: equals a clean run)

    def validate(self) -> None:
        """Raise ConfigError on an empty path."""
        check_path("path", self.path)


def preprocess_overrides(overrides: list[str]) -> list[str]:
    """Accept `verify <dir>` for `path=<dir>` and `--repair` for `repair=true`."""
    return ["repair=true" if item == "--repair" else item if "=" in item else f"path={item}"
            for item in overrides]


def check_annotations(root: Path, path: Path, header: dict[str, Any]) -> None:
    """Raise DataError naming the first episode that is not finite, or the first annotation that
    is missing or not its episode's (`header`: the shard's, from check_shard)."""
    with open_shard(path, header) as arrays:
        episodes = [(record["index"], decode_episode(arrays, record, path))
                    for record in header["episodes"]]
    for k, episode in episodes:
        expected = json.dumps(episode_annotation(episode, k), default=to_json, sort_keys=True)
        file = annotation_path(root, k)
        try:
            found = json.dumps(json.loads(file.read_text()), sort_keys=True)
        except (OSError, ValueError) as error:
            raise DataError(f"{file}: missing or unreadable ({type(error).__name__})") from None
        if found != expected:
            raise DataError(f"{file}: does not match episode {k} of {path.name}")


def legacy_identity(path: Path, manifest: dict[str, Any], shard: int,
                    header: dict[str, Any]) -> list[str]:
    """What a shard without a stored identity contradicts in the manifest: episode indices,
    seeds and frame shape (check_shard), and the env id its episodes were simulated with."""
    try:
        check_shard(path, manifest, shard)
    except DataError as error:
        return [str(error)]
    env = manifest["env"].get("id") if isinstance(manifest.get("env"), dict) else None
    found = {record.get("meta", {}).get("env_id") for record in header.get("episodes", [])}
    if found != {env}:
        return [f"{path}: episodes simulated in {sorted(map(str, found))}, the manifest's env "
                f"is {env!r}"]
    return []


MAX_LISTED = 100_000  # beyond this many shards (an edited `episodes`), only those on disk


def expected_shards(root: Path, manifest: dict[str, Any]) -> list[int] | range:
    """The shard numbers the manifest implies (those on disk among them when it implies more
    than MAX_LISTED, so that an edited `episodes: 10**9` is reported, not iterated)."""
    count = num_shard_files(manifest["episodes"], manifest["shard_size"])
    if count <= MAX_LISTED:
        return range(count)
    stems = (p.stem.removeprefix("shard-") for p in shard_path(root, 0).parent.glob("shard-*"))
    return sorted({int(s) for s in stems if s.isdigit() and int(s) < count})


def classify_shards(root: Path, manifest: dict[str, Any]) -> tuple[dict, dict, list]:
    """(bad, disagree, agree): shard -> problem for shards that are missing or corrupt (or whose
    content is bad though they agree with the manifest); shard -> (the manifest keys it
    contradicts, the problem) for intact shards that contradict the manifest; the intact shards
    that agree with it."""
    bad, disagree, agree = {}, {}, []
    for shard in expected_shards(root, manifest):
        path = shard_path(root, shard)
        try:
            verify_shard(path)
            header = shard_metadata(path)
        except DataError as error:
            bad[shard] = str(error)
            continue
        if not isinstance(header.get("episodes"), list):
            bad[shard] = f"{path}: header without an episode list: corrupt shard"
            continue
        if "dataset" in header:
            keys = identity_mismatch(header, manifest)
            message = (f"{path}: generated for a dataset with other {', '.join(keys)} than "
                       "dataset.json")
        else:
            keys, message = [], "; ".join(legacy_identity(path, manifest, shard, header))
        if message and (keys or "dataset" not in header):
            disagree[shard] = (keys, message)
            continue
        agree.append(shard)
        try:
            check_annotations(root, path, check_shard(path, manifest, shard))
        except DataError as error:
            bad[shard] = str(error)
    return bad, disagree, agree


def stored_identity(root: Path, shard: int) -> dict[str, Any]:
    """The dataset identity a shard's header stores ({} for older shards)."""
    return shard_metadata(shard_path(root, shard)).get("dataset") or {}


def count_consistent(manifest: dict[str, Any]) -> bool:
    """Whether the manifest's shard count follows from its episodes and shard size."""
    return manifest.get("num_shard_files") == num_shard_files(manifest["episodes"],
                                                              manifest["shard_size"])


def manifest_problems(root: Path, manifest: dict[str, Any], disagree: dict) -> list[str]:
    """One line per thing that contradicts dataset.json: its shard count, and each key (or, for
    older shards, each fact) that intact shards contradict."""
    path = root / MANIFEST_NAME
    problems = [] if count_consistent(manifest) else [
        f"{path}: num_shard_files {manifest.get('num_shard_files')!r}, but episodes "
        f"{manifest['episodes']} / shard_size {manifest['shard_size']} make "
        f"{num_shard_files(manifest['episodes'], manifest['shard_size'])}"]
    keys: dict[str, list[int]] = {}
    for shard, (changed, message) in disagree.items():
        for key in changed:
            keys.setdefault(key, []).append(shard)
        if not changed:
            problems.append(message)
    for key, shards in keys.items():
        value = stored_identity(root, shards[0]).get(key)
        problems.append(f"{path}: {key} {manifest.get(key)!r}, but {len(shards)} intact shard(s) "
                        f"(first {shard_path(root, shards[0]).name}) were generated with "
                        f"{value!r}")
    return problems


def verify(root: Path, repair: bool = False) -> dict[str, Any]:
    """Check the dataset under `root` (and repair its bad shards); returns the summary.

    `manifest` lists what puts dataset.json in doubt (then nothing is repaired); `bad` the
    shards proven bad (missing, corrupt, non-finite, with a wrong annotation, or foreign to a
    proven manifest).
    """
    root = Path(root)
    manifest = read_manifest(root)
    bad, disagree, agree = classify_shards(root, manifest)
    problems = manifest_problems(root, manifest, disagree)
    proven = len(agree) > len(disagree) and count_consistent(manifest)
    doubts = [] if proven else problems
    if proven:  # intact shards that contradict a proven manifest are another dataset's
        bad.update({shard: f"{message}: another dataset's shard"
                    for shard, (_, message) in disagree.items()})
    if repair and bad and not proven and not doubts:
        doubts = [f"{root / MANIFEST_NAME}: no intact shard confirms it"]
    repaired = []
    if repair and bad and not doubts:
        with run_lock(root, "path"):
            repair_shards(root, manifest, sorted(bad))
        repaired = [shard_path(root, s).name for s in sorted(bad)]
        bad, disagree, agree = classify_shards(root, manifest)
    return {"path": str(root), "episodes": manifest["episodes"],
            "shards": num_shard_files(manifest["episodes"], manifest["shard_size"]),
            "manifest": doubts, "proven": proven,
            "bad": {shard_path(root, s).name: problem for s, problem in sorted(bad.items())},
            "repaired": repaired}


def repair_shards(root: Path, manifest: dict[str, Any], shards: list[int]) -> None:
    """Generate the given shards again with the (proven) manifest's settings, in its format
    version; each replaced shard is renamed over the bad one, no other file is touched."""
    keys = ("env", "episodes", "frames", "size", "shard_size", "seed")
    cfg = to_dataclass({**{key: manifest[key] for key in keys}, "out": str(root)},
                       GenerateConfig)
    check_env_kwargs(cfg)
    identity = dict(dataset_identity(cfg), format_version=manifest["format_version"])
    write_shards(root, cfg, shards, identity)


def verify_stage(config: VerifyConfig) -> dict[str, Any]:
    """Verify (and repair) a dataset, print the summary; DataError (exit 2) on any bad shard or
    a manifest in doubt (then `--repair` changes nothing)."""
    validate_tree(config)
    summary = verify(Path(config.path), config.repair)
    print(f"verify: {summary['path']}: {summary['episodes']} episodes in {summary['shards']} "
          f"shards, {len(summary['bad'])} bad" + (f", repaired {', '.join(summary['repaired'])}"
                                                  if summary["repaired"] else ""))
    for problem in summary["manifest"] + list(summary["bad"].values()):
        print(f"  {problem}")
    if summary["manifest"]:
        refused = "; repair refused, nothing changed" if config.repair else ""
        raise DataError(f"{summary['manifest'][0]}{refused} (regenerate with `ia-world generate` "
                        "and the dataset's true config, or restore dataset.json)")
    if summary["bad"]:
        raise DataError(f"{summary['path']}: bad shards {', '.join(summary['bad'])}; "
                        f"`ia-world verify {summary['path']} --repair` generates them again")
    return summary
