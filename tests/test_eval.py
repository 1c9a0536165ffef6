"""Energy probe and latent-entropy metrics on constructed data."""

import numpy as np
import pytest

from ia_world.data.episode import make_env, simulate_episode
from ia_world.errors import DataError
from ia_world.eval.probe import clip_targets, fit_probe
from ia_world.eval.spectrum import (
    centred_rankme,
    gain_pct,
    gaussian_entropy,
    position_share,
    rankme,
)


def linear_data(seed, n=200, d=16, noise=0.01):
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(123).normal(size=d)
    x = rng.normal(size=(n, d))
    return x, x @ weights + noise * rng.normal(size=n)


def test_probe_recovers_linear_signal():
    train_x, train_y = linear_data(0)
    test_x, test_y = linear_data(1)
    result = fit_probe(train_x, train_y, test_x, test_y)
    assert result["r2"] > 0.99
    assert len(result["predicted"]) == len(test_y)


def test_probe_on_shuffled_targets_is_near_zero():
    train_x, train_y = linear_data(0)
    test_x, test_y = linear_data(1)
    shuffled = np.random.default_rng(2).permutation(train_y)
    result = fit_probe(train_x, shuffled, test_x, test_y)
    assert result["r2"] < 0.1
    assert result["alpha"] >= 100  # CV picks strong shrinkage for a target with no signal


def test_probe_rejects_too_few_clips():
    x, y = linear_data(0, n=3)
    with pytest.raises(DataError, match="too few"):
        fit_probe(x, y, x, y)


def test_rankme_of_constructed_spectra():
    assert rankme(np.eye(32)) == pytest.approx(32, rel=1e-6)
    rank_one = np.outer(np.arange(1, 21), np.ones(8))
    assert rankme(rank_one) == pytest.approx(1, rel=1e-6)
    two_equal = np.diag([3.0, 3.0, 0, 0])
    assert rankme(two_equal) == pytest.approx(2, rel=1e-6)
    # +-1 on two orthogonal axes around a large constant offset: the offset dominates the raw
    # spectrum, the centred one sees the two equal directions
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], float)
    offset = np.hstack([signs, np.zeros((4, 2))]) + 100.0
    assert rankme(offset) < 1.1 and centred_rankme(offset) == pytest.approx(2, rel=1e-4)


def test_gaussian_entropy_and_gain():
    rng = np.random.default_rng(0)
    unit = rng.normal(size=(20000, 4))
    assert gaussian_entropy(unit) == pytest.approx(0.5 * np.log(2 * np.pi * np.e), abs=0.02)
    # doubling the scale adds log 2 nats per dimension
    assert gaussian_entropy(2 * unit) - gaussian_entropy(unit) == pytest.approx(np.log(2))
    assert gain_pct(11.0, 10.0) == pytest.approx(10.0)


def test_clip_targets_match_ground_truth():
    env = make_env("ia_world/Billiards-v0", size=32)
    episode = simulate_episode(env, 5, 12)
    targets = clip_targets(episode, 8)
    assert targets["total_energy"] == pytest.approx(episode.energy["total"][:8].mean())
    assert targets["num_collisions"] == sum(c["frame"] < 8 for c in episode.collisions)
    assert targets["mean_speed"] > 0


def test_heldout_seeds_never_overlap_pretraining():
    from ia_world.data.shards import episode_seed
    from ia_world.eval.evaluate import check_disjoint, pretraining_seeds

    live = {"data": {"source": "live"}, "seed": 1001, "steps": 3, "batch_size": 2}
    seen = pretraining_seeds(live)
    assert episode_seed(1001, 0) in seen
    heldout = {episode_seed(2002, k) for k in range(20)}
    check_disjoint({"held-out": heldout, "pretraining": seen})
    with pytest.raises(DataError, match="held-out split are also in the pretraining"):
        check_disjoint({"held-out": {episode_seed(1001, k) for k in range(5)},
                        "pretraining": seen})


@pytest.mark.slow
def test_evaluate_and_report_end_to_end(tmp_path):
    import json

    from ia_world.checkpoint import write_initial_checkpoint
    from ia_world.models import ModelConfig
    from ia_world_app.cli import run_command

    model = ModelConfig(frames=8, size=32, embed_dim=32, depth=1, num_heads=2, pred_dim=16,
                        pred_depth=1, pred_heads=2)
    write_initial_checkpoint(tmp_path / "run", model, seed=0)
    small = ["train_episodes=10", "heldout_episodes=8", "qa.epochs=1", "qa.width=16",
             "horizon=4", "fixed.train_episodes=10", "fixed.heldout_episodes=6",
             "qa.min_questions=0", "collision.train_episodes=8", "collision.heldout_episodes=6"]
    result = run_command("evaluate", [f"ckpt={tmp_path / 'run'}", f"out={tmp_path / 'ev'}",
                                      *small])
    assert set(result["probe"]) == {"total_energy", "kinetic_energy", "mean_speed",
                                    "num_collisions", "total_energy (fixed count)",
                                    "mean_speed (fixed count)", "num_collisions (fixed count)",
                                    "object_velocity", "mass_ratio (collision)",
                                    "post_velocity (collision)"}
    energy = result["probe"]["total_energy"]
    assert set(energy) == {"encoder", "floor", "static", "pixel", "ceiling", "density_blind"}
    assert energy["density_blind"]["set"] in {"first frame", "time-averaged", "both"}
    paired = result["metrics"]["R2 total_energy"]["paired_ci"]
    assert set(paired) == {"encoder - floor", "encoder - static", "encoder - pixel",
                           "encoder - ceiling", "encoder - density_blind", "gap_closed"}
    assert paired["encoder - floor"] == [0.0, 0.0]  # its own initialisation
    assert len(energy["encoder"]["predicted"]) == 8
    assert 1 <= result["spectrum"]["rankme"] <= 32
    # the floor's RankMe on the same clips; this checkpoint is its own initialisation
    assert result["spectrum"]["floor_rankme"] == pytest.approx(result["spectrum"]["rankme"])
    assert set(result["qa"]["subjects"]["ceiling"]) <= {"descriptive", "explanatory",
                                                        "predictive", "counterfactual"}
    assert set(result["qa"]["subjects"]) == {"encoder", "floor", "static", "pixel", "ceiling",
                                             "shortcut"}  # + the events-only control
    # QA's paired clip bootstrap: this checkpoint is its own floor, so exactly 0 on every row
    qa_rows = {k: m for k, m in result["metrics"].items() if k.startswith("QA ")}
    assert qa_rows and all(m["paired_ci"]["encoder - floor"] == [0.0, 0.0]
                           for m in qa_rows.values())
    assert {"encoder - shortcut", "gap_closed"} <= set(next(iter(qa_rows.values()))["paired_ci"])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())["eval"]
    assert saved["metrics"]["R2 total_energy"]["encoder"] == energy["encoder"]["r2"]
    # more "strategies" and seeds: random_tube (baseline) scores +0.1 on every metric, motion
    # equals it, untrained is the evaluation above (seed 0) and its copy as seed 1
    def variant(strategy, seed, shift):
        metrics = {k: dict(m, encoder=m["encoder"] + shift) for k, m in saved["metrics"].items()}
        return dict(saved, run=dict(saved["run"], strategy=strategy, seed=seed), metrics=metrics)

    runs = [tmp_path / "ev"]
    for name, result in (("untrained1", variant("untrained", 1, 0.0)),
                         ("base0", variant("random_tube", 0, 0.1)),
                         ("base1", variant("random_tube", 1, 0.1)),
                         ("motion0", variant("motion", 0, 0.1)),
                         ("motion1", variant("motion", 1, 0.1))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"eval": result}))
        runs.append(tmp_path / name)
    path = run_command("report", [f"runs=[{','.join(map(str, runs))}]",
                                  f"out={tmp_path / 'report'}"])
    text = path.read_text()
    assert "| random_tube | 2 |" in text and "| untrained | 2 |" in text
    assert "RankMe gain %" in text and "gap closed untrained" in text
    # within each run: the untrained checkpoint is its own floor, so no run separates from it
    assert "| R2 total_energy | 0 / 0 of 2 |" in text
    assert f"| {next(iter(qa_rows))} | 0 / 0 of 2 |" in text
    header, _, *rows = next(block for block in text.split("\n\n")
                            if block.startswith("| strategy | runs |")).splitlines()
    column = header.split(" | ").index("RankMe / floor")
    untrained = next(row for row in rows if row.startswith("| untrained |"))
    assert untrained.split(" | ")[column] == "1.000 ± 0.000"  # its own initialisation
    energy_row = next(line for line in text.splitlines()
                      if line.startswith("| R2 total_energy | ") and "seeds" in line)
    # untrained - random_tube: the same -0.1 on both seeds is marked; motion - random_tube is not
    assert "| **-0.100 [-0.100, -0.100] p_Holm=0 (2 seeds)** |" in energy_row
    assert "| +0.000 [+0.000, +0.000] p_Holm=1 (2 seeds) |" in energy_row
    for plot in ("controls.png", "r2.png", "qa.png", "energy_scatter.png", "spectra.png"):
        assert (tmp_path / "report" / plot).stat().st_size > 1000
    # the online encoder's evaluation goes next to the target's, never over it
    run_command("evaluate", [f"ckpt={tmp_path / 'run'}", f"out={tmp_path / 'ev'}", *small,
                             "encoder_weights=encoder"])
    both = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert both["eval"] == saved and both["eval_encoder"]["run"]["weights"] == "encoder"
    with pytest.raises(DataError, match="for the encoder weights"):
        run_command("report", [f"runs=[{tmp_path / 'base0'}]", "encoder_weights=encoder",
                               f"out={tmp_path / 'report2'}"])


def test_report_without_runs_is_a_clear_error(tmp_path):
    from ia_world_app.cli import run_command

    with pytest.raises(DataError, match="no runs given"):
        run_command("report", [f"out={tmp_path}"])
    with pytest.raises(DataError, match="no evaluated metrics.json"):
        run_command("report", [f"runs=[{tmp_path}]", f"out={tmp_path}"])


def test_fast_r2_matches_sklearn():
    from sklearn.metrics import r2_score

    from ia_world.eval.probe import r2

    rng = np.random.default_rng(0)
    true, predicted = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    assert r2(true, predicted) == pytest.approx(r2_score(true, predicted))
    assert r2(true[:, 0], predicted[:, 0]) == pytest.approx(r2_score(true[:, 0], predicted[:, 0]))


def test_split_cache_reads_back_the_same_splits_and_questions(tmp_path, monkeypatch):
    from ia_world.eval import evaluate as evaluate_module
    from ia_world.eval.evaluate import EvalConfig, FixedSplitConfig, evaluation_splits
    from ia_world.eval.qa import to_clevrer
    from ia_world.tokens import TokenGrid

    cfg = EvalConfig(ckpt="unused", train_episodes=6, heldout_episodes=4, horizon=4,
                     fixed=FixedSplitConfig(train_episodes=5, heldout_episodes=3),
                     cache=str(tmp_path / "cache"))
    cfg.qa.min_questions = 0
    grid = TokenGrid(frames=8, size=32, tubelet_t=2, patch=8)
    first = evaluation_splits(cfg, grid, {})
    assert len(list((tmp_path / "cache").glob("split-*.safetensors"))) == 4
    assert len(list((tmp_path / "cache").glob("questions-*.json"))) == 2

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated although cached")

    monkeypatch.setattr(evaluate_module, "simulate_split", no_simulation)
    monkeypatch.setattr(evaluate_module, "split_episodes", no_simulation)
    monkeypatch.setattr(evaluate_module, "generate_questions", no_simulation)
    second = evaluation_splits(cfg, grid, {})
    for name in ("train", "heldout", "fixed_train", "fixed_heldout"):
        a, b = getattr(first, name), getattr(second, name)
        assert [ep.meta["seed"] for ep in a] == [ep.meta["seed"] for ep in b]
        assert all(np.array_equal(x.frames, y.frames) and x.collisions == y.collisions
                   for x, y in zip(a, b))
    for a, b in zip(first.questions_heldout, second.questions_heldout):
        assert a.clip == b.clip and to_clevrer(a, 0) == to_clevrer(b, 0)
    # the test role simulates other held-out episodes (and caches them under other names)
    monkeypatch.undo()
    test_role = evaluation_splits(EvalConfig(**{**cfg.__dict__, "role": "test"}), grid, {})
    assert not {ep.meta["seed"] for ep in test_role.heldout} & {ep.meta["seed"]
                                                                 for ep in first.heldout}


def test_position_share_separates_what_positions_carry_from_what_clips_carry():
    rng = np.random.default_rng(0)
    per_position = rng.normal(size=(1, 16, 8))                   # the same in every clip
    per_clip = rng.normal(size=(32, 16, 8))
    per_clip -= per_clip.mean(0)                                 # no common part per position
    assert position_share(np.repeat(per_position, 32, 0)) == pytest.approx(1.0)
    assert position_share(per_clip) == pytest.approx(0.0, abs=1e-12)
    between = ((per_position - per_position.mean((0, 1))) ** 2).sum(-1).mean()
    within = (per_clip ** 2).sum(-1).mean()                      # cross terms vanish
    assert position_share(per_position + per_clip) == pytest.approx(between / (between + within))
