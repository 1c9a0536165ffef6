"""Format versions of the artifacts ia-world writes, and the one check every reader runs.

Each artifact carries `format_version` (an int) in its JSON: a dataset's dataset.json (and shard
headers), a checkpoint's config.json, metrics.json, a world model's config.json. A reader names
the versions it reads (one reader per version, chosen by `format_version`); anything else is one
clear error naming the file. A file written before versions existed reads as version 0.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ia_world.errors import DataError, IAWorldError

KEY = "format_version"
DATASET_VERSION = 2  # dataset.json and the shard headers written now (ia_world/data/shards.py)
CHECKPOINT_VERSION = 1  # a checkpoint's config.json (ia_world/checkpoint.py)
METRICS_VERSION = 1  # metrics.json (ia_world/eval/evaluate.py)
WORLD_MODEL_VERSION = 1  # a world model's config.json (agents/world_model.py)
UNVERSIONED = 0  # what a file written before format versions existed reads as


def format_version(document: dict) -> int | object:
    """The `format_version` a JSON document carries (UNVERSIONED when it has none)."""
    return document.get(KEY, UNVERSIONED)


def check_format_version(path: str | Path, found: object, supported: Collection[int],
                         error: type[IAWorldError] = DataError) -> int:
    """`found` when it is one of `supported`, else one line naming the file and the versions."""
    if type(found) is not int or found not in supported:
        readable = ", ".join(map(str, sorted(supported)))
        raise error(f"{path}: format_version {found!r}, this reader reads {readable} "
                    "(written by another version of ia-world: regenerate it)")
    return found
