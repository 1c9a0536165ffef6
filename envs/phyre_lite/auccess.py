"""AUCCESS (PHYRE's area under the success curve) and success@1 from per-puzzle first successes."""

from __future__ import annotations

import numpy as np

MAX_ATTEMPTS = 100


def auccess_weights(attempts: int = MAX_ATTEMPTS) -> np.ndarray:
    """w_k = log(k + 1) - log(k) for k = 1..attempts."""
    k = np.arange(1, attempts + 1, dtype=np.float64)
    return np.log(k + 1) - np.log(k)


def auccess(first_success: int | None, attempts: int = MAX_ATTEMPTS) -> float:
    """AUCCESS of a puzzle first solved at valid attempt `first_success` (1-based; None: never)."""
    if first_success is None or first_success > attempts:
        return 0.0
    if first_success < 1:
        raise ValueError(f"first_success must be >= 1, got {first_success}")
    weights = auccess_weights(attempts)
    return float(weights[first_success - 1:].sum() / weights.sum())


def mean_auccess(first_successes, attempts: int = MAX_ATTEMPTS) -> float:
    """AUCCESS averaged over puzzles."""
    values = [auccess(f, attempts) for f in first_successes]
    return float(np.mean(values)) if values else float("nan")


def success_at(first_successes, k: int = 1) -> float:
    """Share of puzzles solved within the first k valid attempts."""
    values = [f is not None and f <= k for f in first_successes]
    return float(np.mean(values)) if values else float("nan")
