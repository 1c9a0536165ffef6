"""Sampling planners over a box action space: random shooting and the cross-entropy method.

Both are generic over an objective `scores = objective(actions (M, A)) -> (M,)` (higher is
better, -inf = infeasible) and call it in chunks of at most `batch_size` candidates, which
bounds the memory of batched latent rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ia_world.config import check_choice, check_range

Objective = Callable[[np.ndarray], np.ndarray]


@dataclass
class PlannerConfig:
    """Search budget: iterations x population candidates, CEM elites, chunk size."""

    method: str = "cem"  # cem | random
    iterations: int = 3  # search rounds (cem refits its Gaussian between them; random: uniform)
    population: int = 64  # candidate placements scored per round
    elites: int = 8  # best candidates the next round's Gaussian is fit to
    batch_size: int = 64  # candidates per objective call (memory budget)
    min_std: float = 0.02  # floor of the CEM std, as a share of the action box
    seed: int = 0  # sampling seed of the search

    def validate(self) -> None:
        """Range-check the budget."""
        check_choice("method", self.method, ("cem", "random"))
        check_range("iterations", self.iterations, 1, 10_000)
        check_range("population", self.population, 1, 10**6)
        check_range("elites", self.elites, 1, self.population)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("min_std", self.min_std, 0.0, 1.0)


@dataclass
class PlanResult:
    """Every evaluated candidate (M, A) with its score (M,); `ranked` orders them best first."""

    actions: np.ndarray
    scores: np.ndarray

    def ranked(self) -> np.ndarray:
        """Feasible candidates (finite score), best first (stable for ties)."""
        order = np.argsort(-self.scores, kind="stable")
        order = order[np.isfinite(self.scores[order])]
        return self.actions[order]


def evaluate_in_chunks(objective: Objective, actions: np.ndarray, batch_size: int) -> np.ndarray:
    """objective over (M, A) candidates, at most batch_size per call -> (M,) float64."""
    scores = [np.asarray(objective(actions[i:i + batch_size]), np.float64).reshape(-1)
              for i in range(0, len(actions), batch_size)]
    return np.concatenate(scores) if scores else np.zeros(0)


def plan(objective: Objective, low: np.ndarray, high: np.ndarray, cfg: PlannerConfig,
         rng: np.random.Generator | None = None) -> PlanResult:
    """Search the box [low, high] with CEM (refit a Gaussian to the elites) or random shooting."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    rng = rng if rng is not None else np.random.default_rng(cfg.seed)
    mean, std = (low + high) / 2, (high - low) / 2
    all_actions, all_scores = [], []
    for iteration in range(cfg.iterations):
        if cfg.method == "random" or iteration == 0:
            actions = rng.uniform(low, high, (cfg.population, len(low)))
        else:
            actions = np.clip(rng.normal(mean, std, (cfg.population, len(low))), low, high)
        scores = evaluate_in_chunks(objective, actions, cfg.batch_size)
        all_actions.append(actions)
        all_scores.append(scores)
        feasible = np.flatnonzero(np.isfinite(scores))
        if cfg.method == "cem" and len(feasible):
            elite = feasible[np.argsort(-scores[feasible], kind="stable")[: cfg.elites]]
            mean = actions[elite].mean(0)
            std = np.maximum(actions[elite].std(0), cfg.min_std * (high - low))
    return PlanResult(np.concatenate(all_actions), np.concatenate(all_scores))
