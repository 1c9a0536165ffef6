"""Floor and ceiling agents for PHYRE-Lite: uniform random placements and a simulator oracle.

Every agent answers `propose(observation, n, puzzle) -> (n, 3) ranked actions`; the evaluator
tries them in order (invalid ones are skipped, not counted). Only the oracle reads the puzzle's
physics; the random agent uses it only to check placements, which PHYRE reports for free.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pymunk

from envs.phyre_lite.scene import GREEN, SCENE, Puzzle, attempt, build_space, placement_error
from ia_world.config import check_range


@dataclass
class RandomConfig:
    """Uniform random placements (the floor)."""

    name: str = "random"  # agent name (configs/agent/<name>.yaml)
    seed: int = 0  # placement sampling seed

    def validate(self) -> None:
        """Nothing to range-check."""


@dataclass
class OracleConfig:
    """Random search in the true simulator, solved candidates ranked first (the ceiling)."""

    name: str = "oracle"  # agent name (configs/agent/<name>.yaml)
    seed: int = 0  # placement sampling seed
    max_simulations: int = 4000  # simulated valid candidates per puzzle at most
    focus_share: float = 0.6  # share of candidates sampled around the dynamic bodies
    focus_spread: float = 40.0  # px: spread of the focused samples

    def validate(self) -> None:
        """Range-check the search budget and sampling mix."""
        check_range("max_simulations", self.max_simulations, 1, 10**7)
        check_range("focus_share", self.focus_share, 0.0, 1.0)
        check_range("focus_spread", self.focus_spread, 1.0, SCENE)


def puzzle_rng(seed: int, puzzle: Puzzle) -> np.random.Generator:
    """A generator that depends only on the agent seed and the puzzle (not on the run order)."""
    return np.random.default_rng((seed, zlib.crc32(puzzle.task_id.encode())))


def sample_valid(rng: np.random.Generator, space: pymunk.Space, n: int,
                 max_tries: int = 100_000) -> np.ndarray:
    """n uniform actions (n, 3) whose placements are valid."""
    actions = []
    for _ in range(max_tries):
        if len(actions) == n:
            break
        action = rng.uniform(0.0, 1.0, 3)
        if placement_error(space, action) is None:
            actions.append(action)
    return np.array(actions, np.float64).reshape(-1, 3)


class RandomAgent:
    """Proposes n uniformly random valid placements."""

    def __init__(self, cfg: RandomConfig):
        self.cfg = cfg

    def propose(self, observation: np.ndarray, n: int, puzzle: Puzzle) -> np.ndarray:
        """(n, 3) random valid actions in [0, 1]^3."""
        return sample_valid(puzzle_rng(self.cfg.seed, puzzle), build_space(puzzle), n)


class OracleAgent:
    """Simulates candidates in the true physics; returns solving actions first."""

    def __init__(self, cfg: OracleConfig):
        self.cfg = cfg

    def _candidate(self, rng: np.random.Generator, bodies: list[pymunk.Body],
                   green: pymunk.Body) -> np.ndarray:
        if rng.random() >= self.cfg.focus_share:
            return rng.uniform(0.0, 1.0, 3)
        body = green if rng.random() < 0.6 else bodies[int(rng.integers(len(bodies)))]
        offset = np.array([rng.normal(0.0, self.cfg.focus_spread),
                           abs(rng.normal(0.0, 1.25 * self.cfg.focus_spread))])
        x, y = (np.array(body.position) + offset) / SCENE
        return np.array([x, y, rng.uniform()])

    def propose(self, observation: np.ndarray, n: int, puzzle: Puzzle) -> np.ndarray:
        """Up to n actions: the first solving candidate found, then the unsolved ones tried."""
        rng = puzzle_rng(self.cfg.seed, puzzle)
        space = build_space(puzzle)
        bodies = [b for b in space.bodies if b.body_type == pymunk.Body.DYNAMIC]
        green = next(b for b in bodies if any(s.collision_type == GREEN for s in b.shapes))
        tried: list[np.ndarray] = []
        for _ in range(self.cfg.max_simulations):
            action = self._candidate(rng, bodies, green)
            while placement_error(space, action) is not None:
                action = self._candidate(rng, bodies, green)
            if attempt(space, action).solved:
                return np.array([action, *tried[: n - 1]]).reshape(-1, 3)
            tried.append(action)
        return np.array(tried[:n]).reshape(-1, 3)

