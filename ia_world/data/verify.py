"""`ia-world verify <dataset dir> [--repair]`: check a generated dataset shard by shard.

Every shard is checked against its sha256 sidecar and its manifest (episode indices, seeds and
frame shape), and every episode's annotation against the one its shard gives. `repair=true`
deletes only the bad shards and generates them again; generation is deterministic, so the
repaired dataset equals a clean run.
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
from ia_world.data.generator import GenerateConfig, generate
from ia_world.data.shards import (
    check_shard,
    decode_episode,
    num_shard_files,
    open_shard,
    read_manifest,
    shard_path,
)
from ia_world.errors import DataError


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
    """Raise DataError naming the first annotation that is missing or not its episode's."""
    with open_shard(path, header) as arrays:
        for record in header["episodes"]:
            k = record["index"]
            expected = json.dumps(episode_annotation(decode_episode(arrays, record, path), k),
                                  default=to_json, sort_keys=True)
            file = annotation_path(root, k)
            try:
                found = json.dumps(json.loads(file.read_text()), sort_keys=True)
            except (OSError, ValueError) as error:
                raise DataError(f"{file}: missing or unreadable ({type(error).__name__})") from None
            if found != expected:
                raise DataError(f"{file}: does not match episode {k} of {path.name}")


def bad_shards(root: Path, manifest: dict[str, Any]) -> dict[int, str]:
    """Shard number -> the first problem found with it or its episodes' annotations."""
    problems = {}
    for shard in range(num_shard_files(manifest["episodes"], manifest["shard_size"])):
        path = shard_path(root, shard)
        try:
            check_annotations(root, path, check_shard(path, manifest, shard))
        except DataError as error:
            problems[shard] = str(error)
    return problems


def repair_shards(root: Path, manifest: dict[str, Any], shards: list[int]) -> None:
    """Delete the given shards and generate them again with the manifest's settings."""
    keys = ("env", "episodes", "frames", "size", "shard_size", "seed")  # the manifest's version
    cfg = to_dataclass({**{key: manifest[key] for key in keys}, "out": str(root)},
                       GenerateConfig)
    for shard in shards:
        shard_path(root, shard).unlink(missing_ok=True)
    generate(cfg)


def verify(root: Path, repair: bool = False) -> dict[str, Any]:
    """Check the dataset under `root` (and repair its bad shards); returns the summary."""
    root = Path(root)
    manifest = read_manifest(root)
    problems = bad_shards(root, manifest)
    repaired = []
    if repair and problems:
        repair_shards(root, manifest, sorted(problems))
        repaired = [shard_path(root, s).name for s in sorted(problems)]
        problems = bad_shards(root, manifest)
    return {"path": str(root), "episodes": manifest["episodes"],
            "shards": num_shard_files(manifest["episodes"], manifest["shard_size"]),
            "bad": {shard_path(root, s).name: problem for s, problem in problems.items()},
            "repaired": repaired}


def verify_stage(config: VerifyConfig) -> dict[str, Any]:
    """Verify (and repair) a dataset, print the summary; DataError (exit 2) on any bad shard."""
    validate_tree(config)
    summary = verify(Path(config.path), config.repair)
    print(f"verify: {summary['path']}: {summary['episodes']} episodes in {summary['shards']} "
          f"shards, {len(summary['bad'])} bad" + (f", repaired {', '.join(summary['repaired'])}"
                                                  if summary["repaired"] else ""))
    for problem in summary["bad"].values():
        print(f"  {problem}")
    if summary["bad"]:
        raise DataError(f"{summary['path']}: bad shards {', '.join(summary['bad'])}; "
                        f"`ia-world verify {summary['path']} --repair` generates them again")
    return summary
