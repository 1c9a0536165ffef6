"""Energy probe: ridge regression from frozen pooled clip latents to physical ground truth."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ia_world.data.episode import Episode
from ia_world.errors import DataError

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


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              alphas: tuple[float, ...] = tuple(np.logspace(-3, 4, 15)), folds: int = 5,
              seed: int = 0) -> dict:
    """Ridge probe (B, D) -> (B,): alpha by k-fold CV on the train split, R^2 on the test split."""
    if len(train_x) < 2 * folds:
        raise DataError(f"energy probe: {len(train_x)} training clips are too few for "
                        f"{folds} folds")
    cv = KFold(folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, cv=cv))
    model.fit(train_x, train_y)
    predicted = model.predict(test_x)
    return {"r2": float(r2_score(test_y, predicted)), "alpha": float(model[-1].alpha_),
            "true": [float(v) for v in test_y], "predicted": [float(v) for v in predicted]}


def probe_all(train_x: np.ndarray, train_targets: list[dict], test_x: np.ndarray,
              test_targets: list[dict], folds: int = 5, seed: int = 0) -> dict[str, dict]:
    """`fit_probe` for every name in TARGETS; targets are lists of `clip_targets` dicts."""
    return {name: fit_probe(train_x, np.array([t[name] for t in train_targets]),
                            test_x, np.array([t[name] for t in test_targets]),
                            folds=folds, seed=seed)
            for name in TARGETS}
