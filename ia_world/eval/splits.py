"""Evaluation splits with roles: `val` for every choice, `test` for claims only (DESIGN §6).

Probes and QA heads are fitted on training splits (shared by both roles) and scored on held-out
splits whose base seeds belong to a role: `val` held-out splits serve every choice (regime,
weights, QA design, planner levers, `benchmarks/learning_check.py`, benchmarks); `test`
held-out splits have fresh base seeds and serve only figures that carry a claim. The seed sets
of every split of a run are checked disjoint from each other, from the other role's held-out
splits and from pretraining (`check_disjoint`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ia_world.data.shards import episode_seed
from ia_world.errors import DataError

ROLES = ("val", "test")


@dataclass(frozen=True)
class HeldoutSeeds:
    """Base seeds of one role's held-out splits (episode k: episode_seed(base, k))."""

    heldout: int  # variable-count held-out split (probes, entropy, mask hit-rate)
    fixed_heldout: int  # fixed-count held-out split (QA, fixed-count probes)
    collision_heldout: int  # two-ball one-collision held-out split (the collision probe)


# val keeps the held-out seeds every earlier choice was made on; test seeds are fresh
HELDOUT_SEEDS = {"val": HeldoutSeeds(2002, 4004, 5105),
                 "test": HeldoutSeeds(7007, 8008, 9109)}


def heldout_seeds(role: str) -> HeldoutSeeds:
    """The held-out base seeds of `role` (DataError for an unknown role)."""
    if role not in HELDOUT_SEEDS:
        raise DataError(f"split role {role!r} is not one of {ROLES}")
    return HELDOUT_SEEDS[role]


def seed_set(base_seed: int, count: int) -> set[int]:
    """Episode seeds episode_seed(base_seed, k) for k < count."""
    return {episode_seed(base_seed, k) for k in range(count)}


def other_roles(role: str, counts: dict[str, int]) -> dict[str, set[int]]:
    """The held-out seed sets the other roles would use at these split sizes
    (counts: field of HeldoutSeeds -> episodes)."""
    return {f"{other} {name}": seed_set(getattr(heldout_seeds(other), name), count)
            for other in ROLES if other != role for name, count in counts.items()}


def check_disjoint(splits: dict[str, set[int]]) -> None:
    """Raise DataError when two splits share an episode seed."""
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = splits[a] & splits[b]
            if shared:
                raise DataError(f"{len(shared)} episode seeds of the {a} split are also in the "
                                f"{b} split (e.g. {min(shared)}); use another base seed")
