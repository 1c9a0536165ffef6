"""Small statistics shared by the evaluation: AUROC, bootstrap CIs and the gap closed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

BOOTSTRAP_SAMPLES = 1000


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn; ties count half); nan with one class only."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def bootstrap_ci(statistic: Callable[[np.ndarray], float], groups: int, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95) -> list[float]:
    """Percentile CI of statistic(indices) over resamples (with replacement) of `groups` units."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, groups, groups)) for _ in range(samples)])
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def mean_ci(values: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> list[float]:
    """95% bootstrap CI of the mean over units (e.g. seeds)."""
    values = np.asarray(values, float)
    return bootstrap_ci(lambda idx: float(values[idx].mean()), len(values), seed, samples)


def paired_difference_ci(a: np.ndarray, b: np.ndarray, seed: int = 0,
                         samples: int = BOOTSTRAP_SAMPLES) -> list[float]:
    """95% bootstrap CI of mean(a - b) over paired units (e.g. seeds)."""
    return mean_ci(np.asarray(a, float) - np.asarray(b, float), seed, samples)


def excludes_zero(ci: list[float]) -> bool:
    """Whether a CI [low, high] lies entirely on one side of 0."""
    return bool(ci[0] > 0 or ci[1] < 0)


def gap_closed(encoder: float, floor: float, ceiling: float) -> float:
    """(encoder - floor) / (ceiling - floor): 0 = init, 1 = truth; nan if ceiling <= floor."""
    span = ceiling - floor
    return float((encoder - floor) / span) if span > 1e-12 else float("nan")


def t_interval(values, level: float = 0.95) -> list[float]:
    """Student-t CI of the mean of the finite values (nan with fewer than 2)."""
    from scipy import stats as scipy_stats

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return [float("nan"), float("nan")]
    half = scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * scipy_stats.sem(values)
    mean = float(values.mean())
    return [mean - float(half), mean + float(half)]
