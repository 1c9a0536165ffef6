"""Small statistics shared by the evaluation: AUROC, intervals, multiple comparisons, gap closed.

Two kinds of interval, each for what it can mean:
- within one run, over held-out episodes: percentile bootstrap (`bootstrap_ci`); a paired
  difference resamples the same episodes for both subjects (`paired_bootstrap_cis`);
- across runs (seeds): Student-t intervals of a mean or of a paired difference (`t_interval`,
  `seed_summary`), never a bootstrap over 3-5 numbers, whose percentile "interval" is about
  [min, max] and covers far less than its nominal level.
A table of many differences marks a cell only after Holm's correction (`holm`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

BOOTSTRAP_SAMPLES = 1000
LEVEL = 0.95


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn; ties count half); nan with one class only."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def bootstrap_samples(statistic: Callable[[np.ndarray], np.ndarray | float], groups: int,
                      seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """statistic(indices) over resamples (with replacement) of `groups` units: (samples, ...)."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, groups, groups)) for _ in range(samples)], float)


def percentile_ci(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """Percentile interval of bootstrap values (non-finite ones ignored; nan if none)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def bootstrap_ci(statistic: Callable[[np.ndarray], float], groups: int, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES, level: float = LEVEL) -> list[float]:
    """Percentile CI of statistic(indices) over resamples (with replacement) of `groups` units."""
    return percentile_ci(bootstrap_samples(statistic, groups, seed, samples), level)


def paired_bootstrap_cis(statistics: Callable[[np.ndarray], dict[str, float]], groups: int,
                         seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict[str, list]:
    """Percentile CIs of several statistics computed on the SAME resamples (paired).

    statistics(indices) -> name -> value; e.g. {"encoder - floor": ..., "gap_closed": ...}:
    every difference is taken between subjects scored on the same resampled episodes.
    """
    rng = np.random.default_rng(seed)
    draws = [statistics(rng.integers(0, groups, groups)) for _ in range(samples)]
    return {name: percentile_ci(np.array([d[name] for d in draws], float)) for name in draws[0]}


def encoder_differences(scores: dict[str, float]) -> dict[str, float]:
    """From each subject's score on one resample: encoder - every other subject and, with a
    floor and a ceiling, the gap closed (the statistics of a paired within-run bootstrap)."""
    found = {f"encoder - {s}": scores["encoder"] - v for s, v in scores.items() if s != "encoder"}
    if {"floor", "ceiling"} <= set(scores):
        found["gap_closed"] = gap_closed(scores["encoder"], scores["floor"], scores["ceiling"])
    return found


def finite(values) -> np.ndarray:
    """The finite entries of `values` as a float array."""
    values = np.asarray(values, float)
    return values[np.isfinite(values)]


def t_interval(values, level: float = LEVEL) -> list[float]:
    """Student-t CI of the mean of the finite values (nan with fewer than 2)."""
    values = finite(values)
    if len(values) < 2:
        return [float("nan"), float("nan")]
    half = scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * scipy_stats.sem(values)
    mean = float(values.mean())
    return [mean - float(half), mean + float(half)]


def t_pvalue(values) -> float:
    """Two-sided one-sample t-test p-value of mean(values) = 0 (finite values; nan if < 2)."""
    values = finite(values)
    if len(values) < 2:
        return float("nan")
    if np.all(values == values[0]):
        return 0.0 if values[0] != 0 else 1.0
    return float(scipy_stats.ttest_1samp(values, 0.0).pvalue)


def seed_summary(values) -> dict:
    """Mean over runs with its t-interval, counting the runs whose value is not finite."""
    values = np.asarray(values, float)
    kept = finite(values)
    return {"mean": float(kept.mean()) if len(kept) else float("nan"), "ci": t_interval(kept),
            "n": len(kept), "nan": int(len(values) - len(kept))}


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (nan stays nan; monotone; capped at 1)."""
    pvalues = np.asarray(pvalues, float)
    adjusted = np.full(pvalues.shape, np.nan)
    order = [i for i in np.argsort(pvalues) if np.isfinite(pvalues[i])]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def excludes_zero(ci: list[float]) -> bool:
    """Whether a CI [low, high] lies entirely on one side of 0."""
    return bool(ci[0] > 0 or ci[1] < 0)


def gap_closed(encoder: float, floor: float, ceiling: float) -> float:
    """(encoder - floor) / (ceiling - floor): 0 = init, 1 = truth; nan if ceiling <= floor."""
    span = ceiling - floor
    return float((encoder - floor) / span) if span > 1e-12 else float("nan")
