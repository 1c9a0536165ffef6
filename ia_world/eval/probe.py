"""Ridge probes from clip features to physical ground truth, R^2 with a bootstrap CI."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ia_world.data.episode import Episode
from ia_world.errors import DataError
from ia_world.eval.stats import bootstrap_ci

TARGETS = ("total_energy", "kinetic_energy", "mean_speed", "num_collisions")


def clip_targets(episode: Episode, num_frames: int) -> dict[str, float]:
    """Ground truth of the episode's first `num_frames` frames: mean energies, speed, collisions."""
    if episode.energy is None:
        raise DataError(f"episode seed {episode.meta.get('seed')}: no energy ground truth")
    dynamic = [i for i, obj in enumerate(episode.objects) if not obj.get("static", False)]
    speed = np.linalg.norm(episode.states["velocity"][:num_frames, dynamic], axis=-1)
    return {"total_energy": float(episode.energy["total"][:num_frames].mean()),
            "kinetic_energy": float(episode.energy["kinetic"][:num_frames].mean()),
            "mean_speed": float(speed.mean()) if dynamic else 0.0,
            "num_collisions": float(sum(c["frame"] < num_frames for c in episode.collisions))}


def r2(true: np.ndarray, predicted: np.ndarray) -> float:
    """R^2 of (B,) or (B, K) predictions (K outputs averaged, as r2_score); fast for bootstraps."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    total = ((true - true.mean(0)) ** 2).sum(0)
    if np.any(total == 0):
        return float("nan")
    return float(np.mean(1 - ((true - predicted) ** 2).sum(0) / total))


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              alphas: tuple[float, ...] = tuple(np.logspace(-3, 4, 15)), folds: int = 5,
              seed: int = 0, groups: np.ndarray | None = None) -> dict:
    """Ridge probe (B, F) -> (B,) or (B, K): alpha by k-fold CV on train, R^2 on test.

    The 95% CI resamples held-out episodes (`groups` (B,) says which episode each row is of;
    default: one row per episode).
    """
    if len(train_x) < 2 * folds:
        raise DataError(f"probe: {len(train_x)} training clips are too few for {folds} folds")
    cv = KFold(folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, cv=cv))
    model.fit(train_x, train_y)
    predicted = model.predict(test_x)
    groups = np.arange(len(test_y)) if groups is None else np.asarray(groups)
    rows = [np.flatnonzero(groups == g) for g in np.unique(groups)]

    def resampled_r2(episodes: np.ndarray) -> float:
        picked = np.concatenate([rows[e] for e in episodes])
        return r2(test_y[picked], predicted[picked])

    return {"r2": float(r2_score(test_y, predicted)), "alpha": float(model[-1].alpha_),
            "ci": bootstrap_ci(resampled_r2, len(rows), seed),
            "true": np.asarray(test_y).tolist(), "predicted": np.asarray(predicted).tolist()}
