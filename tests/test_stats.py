"""The evaluation protocol's statistics and split roles (ia_world/eval/stats.py, splits.py)."""

import numpy as np
import pytest

from ia_world.errors import DataError
from ia_world.eval.probe import fit_probes, paired_probe_cis
from ia_world.eval.splits import HELDOUT_SEEDS, ROLES, check_disjoint, seed_set
from ia_world.eval.stats import holm, seed_summary, t_interval, t_pvalue
from ia_world.report import chance_note, paired_differences


def coverage(n: int, repetitions: int, rng: np.random.Generator) -> float:
    """Share of t-intervals over n normal draws that hold the true mean."""
    hits = 0
    for _ in range(repetitions):
        low, high = t_interval(rng.normal(1.0, 2.0, n))
        hits += low <= 1.0 <= high
    return hits / repetitions


def test_t_interval_covers_a_known_mean_at_its_nominal_rate():
    rng = np.random.default_rng(0)
    assert 0.93 <= coverage(5, 1000, rng) <= 0.97
    # the [min, max] of 3 values (what a bootstrap over 3 seeds gives) covers ~75%, far less
    hits = sum(min(x) <= 1.0 <= max(x) for x in rng.normal(1.0, 2.0, (1000, 3)))
    assert hits / 1000 < 0.85


def test_paired_differences_with_no_effect_are_marked_at_about_the_chance_rate():
    rng = np.random.default_rng(1)
    marked = sum(t_pvalue(rng.normal(0, 1, 5)) < 0.05 for _ in range(2000)) / 2000
    assert 0.03 <= marked <= 0.07


def test_holm_adjusts_in_order_and_keeps_nan():
    adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert holm([0.5])[0] == 0.5


def test_nan_seeds_are_counted_not_dropped_silently():
    summary = seed_summary([0.1, float("nan"), 0.3, 0.2])
    assert summary["n"] == 3 and summary["nan"] == 1
    assert summary["mean"] == pytest.approx(0.2)


def test_split_roles_share_no_seed_and_overlaps_are_refused():
    sets = {(role, name): seed_set(getattr(HELDOUT_SEEDS[role], name), 2000)
            for role in ROLES for name in ("heldout", "fixed_heldout", "collision_heldout")}
    keys = list(sets)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not sets[a] & sets[b], (a, b)
    bases = [getattr(HELDOUT_SEEDS[r], n) for r in ROLES for n in ("heldout", "fixed_heldout",
                                                                   "collision_heldout")]
    assert len(set(bases)) == len(bases)
    with pytest.raises(DataError, match="val held-out split are also in the pretraining"):
        check_disjoint({"val held-out": seed_set(HELDOUT_SEEDS["val"].heldout, 10),
                        "pretraining": seed_set(HELDOUT_SEEDS["val"].heldout, 3)})


def test_paired_probe_cis_difference_and_gap():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 6))
    y = x[:, 0] + 0.3 * rng.normal(size=120)
    subjects = {"encoder": x[:, :3], "floor": rng.normal(size=(120, 3)), "ceiling": x[:, :1]}
    results = {s: fit_probes(f[:80], {"y": y[:80]}, f[80:], {"y": y[80:]})["y"]
               for s, f in subjects.items()}
    paired = paired_probe_cis(results)
    low, high = paired["encoder - floor"]
    assert low > 0.3  # the encoder sees the signal, the floor does not
    assert 0.5 < paired["gap_closed"][0] <= paired["gap_closed"][1] < 1.2
    same = paired_probe_cis({"encoder": results["encoder"], "copy": results["encoder"]})
    assert same["encoder - copy"] == [0.0, 0.0]  # a subject against itself: exactly 0


def fake_eval(strategy: str, seed: int, value: float) -> dict:
    """A minimal evaluation record for the report's difference table."""
    metric = {s: 0.0 for s in ("floor", "static", "pixel", "ceiling")}
    return {"run": {"strategy": strategy, "seed": seed}, "splits": {"role": "val"},
            "metrics": {"R2 x": {**metric, "encoder": value, "gap_closed": value}},
            "spectrum": {"rankme": 1.0, "rankme_centered": 1.0, "gaussian_entropy": 0.0}}


def test_report_differences_use_t_intervals_and_holm():
    groups = {"random_tube": [fake_eval("random_tube", s, 0.1 * s) for s in range(5)],
              "interaction": [fake_eval("interaction", s, 0.1 * s + 0.5 + 0.01 * (s % 2))
                              for s in range(5)]}
    differences = paired_differences(groups, "random_tube")
    cell = differences["R2 x"]["interaction"]
    assert cell["seeds"] == 5 and cell["ci"][0] > 0.49 and cell["p_holm"] < 0.05
    assert "Marked (bold): " in chance_note(differences)
