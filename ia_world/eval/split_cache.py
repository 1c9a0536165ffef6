"""An on-disk cache of what an evaluation needs that no checkpoint changes: the simulated
splits (as episode shards, the dataset format) and their questions (CLEVRER records).

Each entry is named by a digest of every key that changes it plus the source of the code that
makes it (the envs, the episode recorder, the question generator), so an edit to any of them
starts a new entry instead of reading a stale one. Entries are written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

import envs
from ia_world.atomic import atomic_write_json
from ia_world.checkpoint import read_json
from ia_world.data import episode as episode_module
from ia_world.data.episode import Episode
from ia_world.data.shards import read_shard, write_shard
from ia_world.errors import DataError
from ia_world.eval import qa_generator
from ia_world.eval.qa import Question, from_clevrer, to_clevrer

T = TypeVar("T")


@cache
def code_digest() -> str:
    """sha256 of the sources that make splits and questions."""
    digest = hashlib.sha256()
    sources = sorted(Path(envs.__file__).parent.rglob("*.py"))
    sources += [Path(episode_module.__file__), Path(qa_generator.__file__)]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def entry(cache_dir: str, kind: str, key: dict, suffix: str) -> Path:
    """The cache file of one entry: <cache_dir>/<kind>-<digest of key and code><suffix>."""
    text = json.dumps({"key": key, "code": code_digest()}, sort_keys=True, default=str)
    return Path(cache_dir) / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:20]}{suffix}"


def cached(cache_dir: str | None, kind: str, suffix: str, key: dict, make: Callable[[], T],
           read: Callable[[Path], T], write: Callable[[Path, T], None]) -> T:
    """make() once per key: later calls read(path) the entry write(path, value) left."""
    if cache_dir is None:
        return make()
    path = entry(cache_dir, kind, key, suffix)
    if path.is_file():
        return read(path)
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, value)
    return value


def cached_episodes(cache_dir: str | None, key: dict,
                    make: Callable[[], list[Episode]]) -> list[Episode]:
    """The split's episodes, simulated once per key and kept as one episode shard."""
    return cached(cache_dir, "split", ".safetensors", key, make, read_shard,
                  lambda path, episodes: write_shard(path, list(enumerate(episodes))))


def read_questions(path: Path) -> list[Question]:
    """Questions from a cache entry (CLEVRER records + their clip), or DataError naming it."""
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a list of question records; delete the file")
    return [from_clevrer(record, record["clip"]) for record in records]


def cached_questions(cache_dir: str | None, key: dict,
                     make: Callable[[], list[Question]]) -> list[Question]:
    """The split's questions, asked once per key and kept as CLEVRER records."""
    def write(path: Path, questions: list[Question]) -> None:
        atomic_write_json(path, [{"clip": q.clip, **to_clevrer(q, i)}
                                 for i, q in enumerate(questions)])

    return cached(cache_dir, "questions", ".json", key, make, read_questions, write)
