"""Ridge probes from clip features to physical ground truth, R^2 with bootstrap CIs.

Alpha is chosen per target by efficient leave-one-out (generalised cross-validation) on the
training split only; one SVD of the features serves every target and every alpha.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ia_world.data.episode import Episode
from ia_world.errors import DataError
from ia_world.eval.stats import bootstrap_ci, encoder_differences, paired_bootstrap_cis

TARGETS = ("total_energy", "kinetic_energy", "mean_speed", "num_collisions")
ALPHAS = tuple(np.logspace(-3, 4, 15))
MIN_TRAIN = 4  # fewer training clips than this cannot choose an alpha


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


def group_rows(groups: np.ndarray | None, rows: int) -> list[np.ndarray]:
    """Row indices of each held-out episode (groups (B,) names each row's episode)."""
    groups = np.arange(rows) if groups is None else np.asarray(groups)
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def fit_probes(train_x: np.ndarray, train_y: dict[str, np.ndarray], test_x: np.ndarray,
               test_y: dict[str, np.ndarray], seed: int = 0,
               groups: np.ndarray | None = None) -> dict[str, dict]:
    """Ridge probes (B, F) -> each target (B,) or (B, K), fitted together: target -> result.

    Each target gets its own alpha by leave-one-out on train; a result holds R^2 on test, the
    alpha, the training LOO score (`cv_mse`, for choosing between feature sets without the
    test split), a 95% CI resampling held-out episodes (`groups`: each row's episode; default
    one row per episode), and the held-out truth and predictions (for paired bootstraps).
    """
    if len(train_x) < MIN_TRAIN:
        raise DataError(f"probe: {len(train_x)} training clips are too few (need {MIN_TRAIN})")
    names = list(train_y)
    widths = [np.asarray(train_y[n]).reshape(len(train_x), -1).shape[1] for n in names]
    stacked = np.concatenate([np.asarray(train_y[n], float).reshape(len(train_x), -1)
                              for n in names], 1)                                 # B sum(K)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS, alpha_per_target=True,
                                                    store_cv_results=True))
    model.fit(train_x, stacked)
    predicted = model.predict(test_x).reshape(len(test_x), -1)
    ridge = model[-1]
    alphas = np.broadcast_to(ridge.alpha_, (stacked.shape[1],))
    loo = ridge.cv_results_.reshape(len(train_x), stacked.shape[1], -1)            # B out alphas
    rows = group_rows(groups, len(test_x))
    results, start = {}, 0
    for name, width in zip(names, widths):
        columns = np.arange(start, start + width)
        start += width
        true = np.asarray(test_y[name], float)
        guess = predicted[:, columns].reshape(true.shape)
        chosen = [int(np.argmin(np.abs(np.array(ALPHAS) - alphas[c]))) for c in columns]
        cv_mse = float(np.mean([loo[:, c, a].mean() for c, a in zip(columns, chosen)]))

        def resampled_r2(episodes: np.ndarray, true=true, guess=guess) -> float:
            picked = np.concatenate([rows[e] for e in episodes])
            return r2(true[picked], guess[picked])

        results[name] = {"r2": float(r2_score(true, guess)), "alpha": float(alphas[columns[0]]),
                         "cv_mse": cv_mse, "ci": bootstrap_ci(resampled_r2, len(rows), seed),
                         "true": true.tolist(), "predicted": guess.tolist()}
    return results


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              seed: int = 0, groups: np.ndarray | None = None) -> dict:
    """One ridge probe (B, F) -> (B,) or (B, K): alpha by leave-one-out on train, R^2 on test."""
    return fit_probes(train_x, {"y": train_y}, test_x, {"y": test_y}, seed, groups)["y"]


def paired_probe_cis(results: dict[str, dict], groups: np.ndarray | None = None,
                     seed: int = 0) -> dict[str, list[float]]:
    """Paired bootstrap over held-out episodes of one target's subjects (subject -> fit result):
    CIs of encoder - every other subject and of the gap closed (floor to ceiling)."""
    true = np.asarray(results["encoder"]["true"], float)
    guesses = {s: np.asarray(r["predicted"], float) for s, r in results.items()}
    rows = group_rows(groups, len(true))

    def statistics(episodes: np.ndarray) -> dict[str, float]:
        picked = np.concatenate([rows[e] for e in episodes])
        return encoder_differences({s: r2(true[picked], g[picked]) for s, g in guesses.items()})

    return paired_bootstrap_cis(statistics, len(rows), seed)
