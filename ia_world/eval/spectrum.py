"""Latent entropy of an embedding matrix: RankMe effective rank and Gaussian entropy; how much
of a token set's variance its grid positions alone explain."""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def singular_values(features: np.ndarray) -> np.ndarray:
    """Singular values (descending) of a features matrix (N, D)."""
    return np.linalg.svd(np.asarray(features, np.float64), compute_uv=False)


def rankme(features: np.ndarray) -> float:
    """RankMe: exp of the Shannon entropy of the L1-normalised singular values of (N, D)."""
    sigma = singular_values(features)
    p = sigma / max(sigma.sum(), EPS) + EPS
    return float(np.exp(-(p * np.log(p)).sum()))


def centred_rankme(features: np.ndarray) -> float:
    """RankMe of (N, D) features after subtracting their mean over N."""
    return rankme(features - features.mean(0))


def position_share(tokens: np.ndarray) -> float:
    """Share of the variance of tokens (E, N, D) that their position n alone explains: the
    variance of the per-position means over clips, over the total (0: positions carry nothing
    common to all clips; 1: every clip is the same token set)."""
    tokens = np.asarray(tokens, np.float64)
    grand = tokens.mean((0, 1))
    total = ((tokens - grand) ** 2).sum(-1).mean()
    between = ((tokens.mean(0) - grand) ** 2).sum(-1).mean()
    return float(between / max(total, EPS))


def gaussian_entropy(features: np.ndarray) -> float:
    """Mean over dimensions of the entropy 0.5 log(2 pi e var_d) of features (N, D), in nats."""
    var = np.asarray(features, np.float64).var(axis=0) + EPS
    return float(np.mean(0.5 * np.log(2 * np.pi * np.e * var)))


def gain_pct(value: float, baseline: float) -> float:
    """Relative gain of `value` over `baseline` in percent (of |baseline|)."""
    return float(100.0 * (value - baseline) / max(abs(baseline), EPS))
