"""Fixed, seeded within-template and cross-template folds (5-fold partitions, 80/20 each).

The folds are over the built-in templates only; templates registered later are test-only (all
their variants are in every fold's test set), so adding one never moves a built-in task.
"""

from __future__ import annotations

import zlib

import numpy as np

from .templates import BUILTIN_TEMPLATES, TEMPLATES, VARIANTS_PER_TEMPLATE

NUM_FOLDS = 5
SPLIT_SEED = 1234
SPLITS = ("within", "cross")


def _fold_slice(count: int, fold: int) -> slice:
    size = count // NUM_FOLDS
    return slice(fold * size, (fold + 1) * size)


def split_tasks(split: str, fold: int) -> tuple[list[str], list[str]]:
    """(train task ids, test task ids) of fold `fold` of split `within` or `cross`.

    within: each template's variants are permuted with a fixed seed and fold k holds out the k-th
    fifth; cross: the templates are permuted with a fixed seed and fold k holds out the k-th
    fifth of them (all their variants). Registered templates of your own: test only.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= fold < NUM_FOLDS:
        raise ValueError(f"fold must be in [0, {NUM_FOLDS}), got {fold}")
    names = list(BUILTIN_TEMPLATES)
    train: list[str] = []
    test: list[str] = []
    if split == "within":
        for name in names:
            rng = np.random.default_rng((SPLIT_SEED, zlib.crc32(name.encode())))
            order = rng.permutation(VARIANTS_PER_TEMPLATE)
            held = set(order[_fold_slice(VARIANTS_PER_TEMPLATE, fold)].tolist())
            for variant in range(VARIANTS_PER_TEMPLATE):
                (test if variant in held else train).append(f"{name}:{variant:03d}")
    else:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(names))
        held = {names[i] for i in order[_fold_slice(len(names), fold)]}
        for name in names:
            ids = [f"{name}:{v:03d}" for v in range(VARIANTS_PER_TEMPLATE)]
            (test if name in held else train).extend(ids)
    test += [f"{name}:{v:03d}" for name in sorted(set(TEMPLATES) - set(names))
             for v in range(VARIANTS_PER_TEMPLATE)]
    return train, test


ROLES = ("val", "test")  # val: choosing planner levers; test: figures that carry a claim


def role_tasks(split: str, fold: int) -> dict[str, list[str]]:
    """Task ids by role for fold `fold`: `fit` (what a world model and its probes learn on),
    `val` (choosing planner levers) and `test` (claims); disjoint, checked here.

    val is the next fold's test tasks (fold + 1 mod NUM_FOLDS: other variants for within, other
    templates for cross), all of them train tasks of this fold; fit is the rest of the train.
    """
    train, test = split_tasks(split, fold)
    val_ids = set(split_tasks(split, (fold + 1) % NUM_FOLDS)[1]) & set(train)
    roles = {"fit": [t for t in train if t not in val_ids],
             "val": [t for t in train if t in val_ids], "test": test}
    for a, b in (("fit", "val"), ("fit", "test"), ("val", "test")):
        shared = set(roles[a]) & set(roles[b])
        if shared:
            raise ValueError(f"{split} fold {fold}: {len(shared)} tasks are both {a} and {b} "
                             f"(e.g. {min(shared)})")
    return roles
