"""CEM and random shooting on known objectives; chunked evaluation respects the budget."""

import numpy as np
import pytest

from agents.planner import PlannerConfig, plan
from ia_world.config import to_dataclass
from ia_world.errors import ConfigError

TARGET = np.array([0.3, 0.8, 0.55])


def quadratic(actions: np.ndarray) -> np.ndarray:
    return -((actions - TARGET) ** 2).sum(1)


def test_cem_converges_on_quadratic():
    cfg = PlannerConfig(method="cem", iterations=8, population=64, elites=8, min_std=0.001)
    result = plan(quadratic, np.zeros(3), np.ones(3), cfg)
    best = result.ranked()[0]
    assert np.abs(best - TARGET).max() < 0.02
    random_best = plan(quadratic, np.zeros(3), np.ones(3),
                       PlannerConfig(method="random", iterations=8, population=64)).ranked()[0]
    assert np.abs(best - TARGET).sum() < np.abs(random_best - TARGET).sum()


def test_infeasible_candidates_are_dropped_and_chunks_bounded():
    calls = []

    def objective(actions):
        calls.append(len(actions))
        scores = quadratic(actions)
        scores[actions[:, 0] > 0.5] = -np.inf  # infeasible half
        return scores

    cfg = PlannerConfig(iterations=3, population=50, elites=5, batch_size=16)
    result = plan(objective, np.zeros(3), np.ones(3), cfg)
    ranked = result.ranked()
    assert max(calls) <= 16 and sum(calls) == 150
    assert len(ranked) and (ranked[:, 0] <= 0.5).all()
    scores = quadratic(ranked)
    assert (np.diff(scores) <= 1e-12).all()  # best first
    assert ((ranked >= 0) & (ranked <= 1)).all()


def test_same_seed_same_plan():
    cfg = PlannerConfig(iterations=2, population=20, elites=4)
    a = plan(quadratic, np.zeros(3), np.ones(3), cfg).actions
    b = plan(quadratic, np.zeros(3), np.ones(3), cfg).actions
    np.testing.assert_array_equal(a, b)


def test_bad_config_raises_config_error():
    with pytest.raises(ConfigError, match="elites=10"):
        to_dataclass({"population": 4, "elites": 10}, PlannerConfig)
    with pytest.raises(ConfigError, match="method='mppi'"):
        to_dataclass({"method": "mppi"}, PlannerConfig)
