"""Controls of the evaluation: floor, static, pixel and ceiling; fixed-count splits; bad input."""

import json

import numpy as np
import pytest
import torch

from ia_world.checkpoint import (
    MODEL_FILE,
    initial_encoder,
    load_encoder,
    read_tensors,
    resolve_checkpoint,
    save_checkpoint,
    write_initial_checkpoint,
)
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.generator import EnvConfig
from ia_world.data.shards import episode_seed
from ia_world.errors import CheckpointError, ConfigError
from ia_world.eval.evaluate import EvalConfig
from ia_world.eval.features import (
    attribute_vocab,
    ceiling_features,
    dynamic_indices,
    fit_pixel_basis,
    pixel_features,
    split_clips,
    split_features,
)
from ia_world.eval.probe import clip_targets, fit_probe
from ia_world.eval.qa_generator import generate_questions
from ia_world.eval.qa_head import QAHeadConfig, evaluate_qa
from ia_world.eval.simulated import (
    FixedSplitConfig,
    check_count,
    fixed_count_env,
    simulate_split,
)
from ia_world.eval.splits import heldout_seeds
from ia_world.eval.stats import gap_closed, t_interval
from ia_world.models import ModelConfig
from ia_world.report import ci_cell
from ia_world.tokens import TokenGrid
from ia_world_app import cli
from ia_world_app.cli import run_command

MODEL = ModelConfig(frames=8, size=32, embed_dim=32, depth=1, num_heads=2, pred_dim=16,
                    pred_depth=1, pred_heads=2)
SMALL_EVAL = ["train_episodes=8", "heldout_episodes=6", "qa.epochs=1", "qa.width=16",
              "horizon=4", "fixed.train_episodes=10", "fixed.heldout_episodes=6",
              "qa.min_questions=0", "collision.enabled=false"]


def evaluate(checkpoint, out) -> dict:
    """A seconds-long evaluation of a checkpoint with all controls."""
    return run_command("evaluate", [f"ckpt={checkpoint}", f"out={out}", *SMALL_EVAL])


def trained_copy(tmp_path):
    """A checkpoint whose weights moved away from its init (same config and seed)."""
    initial = resolve_checkpoint(write_initial_checkpoint(tmp_path / "init", MODEL, seed=3))
    tensors = read_tensors(initial / MODEL_FILE)
    generator = torch.Generator().manual_seed(0)
    moved = {k: v + 0.5 * torch.randn(v.shape, generator=generator) if v.is_floating_point()
             else v for k, v in tensors.items()}
    config = json.loads((initial / "config.json").read_text())
    return save_checkpoint(tmp_path / "trained", 10, moved, config, {"step": 10})


@pytest.mark.slow
def test_floor_is_the_initial_checkpoint_and_untrained_gap_is_zero(tmp_path):
    trained = trained_copy(tmp_path)
    floor = initial_encoder(trained)
    init = load_encoder(tmp_path / "init")
    for (name, a), (_, b) in zip(floor.state_dict().items(), init.state_dict().items()):
        assert torch.equal(a, b), name
    changed = load_encoder(trained).state_dict()
    assert any(not torch.equal(changed[k], v) for k, v in init.state_dict().items())
    moved = evaluate(trained, tmp_path / "ev_trained")["metrics"]
    untrained = evaluate(tmp_path / "init", tmp_path / "ev_init")["metrics"]
    for name, metric in untrained.items():
        assert moved[name]["floor"] == metric["encoder"], name       # floor = the init's eval
        assert metric["floor"] == metric["encoder"], name
        if np.isfinite(metric["gap_closed"]):
            assert metric["gap_closed"] == 0.0, name
    assert any(moved[n]["encoder"] != moved[n]["floor"] for n in moved)
    assert {"R2 mean_speed (fixed count)", "R2 object_velocity"} <= set(untrained)


def test_static_control_equals_encoder_on_a_still_clip(tmp_path):
    env = make_env("ia_world/Billiards-v0", size=32)
    episodes = [simulate_episode(env, episode_seed(7, k), 8) for k in range(3)]
    for ep in episodes:
        ep.frames = np.repeat(ep.frames[:1], len(ep.frames), axis=0)
    encoder = load_encoder(write_initial_checkpoint(tmp_path / "run", MODEL, seed=0))
    encoders = {"encoder": encoder, "floor": encoder}
    clips = split_clips(episodes, encoder.grid)
    basis = fit_pixel_basis(clips, encoder.grid.shape[0])
    features = split_features(encoders, episodes, clips, attribute_vocab(episodes), 6, 2, "test",
                              basis)
    for key in ("vector", "tokens", "objects"):
        np.testing.assert_array_equal(getattr(features["static"], key),
                                      getattr(features["encoder"], key))
    moving = [simulate_episode(env, episode_seed(7, k), 8) for k in range(3)]
    moved = split_features(encoders, moving, split_clips(moving, encoder.grid),
                           attribute_vocab(moving), 6, 2, "test", basis)
    assert not np.array_equal(moved["static"].vector, moved["encoder"].vector)


@pytest.fixture(scope="module")
def fixed_splits():
    """`evaluate`'s default fixed-count Billiards splits (5 balls, 16 frames)."""
    fixed = FixedSplitConfig()
    env = fixed_count_env(EnvConfig(), fixed.count, 64)
    return (env, simulate_split(env, fixed.train_episodes, fixed.train_seed, 16),
            simulate_split(env, fixed.heldout_episodes, heldout_seeds("val").fixed_heldout,
                           16))


@pytest.mark.slow
def test_fixed_count_split_has_one_body_count(fixed_splits):
    _, train, heldout = fixed_splits
    assert {len(dynamic_indices(ep)) for ep in train + heldout} == {5}
    check_count(train, 5)
    with pytest.raises(Exception, match="expected only 4"):
        check_count(train, 4)
    with pytest.raises(ConfigError, match="cannot hold it"):
        fixed_count_env(EnvConfig(), 13, 64)
    gravity = fixed_count_env(EnvConfig(name="gravity2d"), 4, 32)  # no extra box tower
    check_count(simulate_split(gravity, 12, 3003, 4), 4)


def test_ceiling_reaches_energy_and_speed():
    env = make_env("ia_world/Billiards-v0")
    train = [simulate_episode(env, episode_seed(11, k), 16) for k in range(40)]
    test = [simulate_episode(env, episode_seed(12, k), 16) for k in range(30)]
    assert len({len(dynamic_indices(ep)) for ep in train}) > 1   # counts vary here
    vocab = attribute_vocab(train + test)
    a, b = ceiling_features(train, 16, vocab, 6), ceiling_features(test, 16, vocab, 6)
    for name in ("total_energy", "mean_speed"):
        result = fit_probe(a.vector, np.array([clip_targets(e, 16)[name] for e in train]),
                           b.vector, np.array([clip_targets(e, 16)[name] for e in test]))
        assert result["r2"] >= 0.95, name
        assert result["ci"][0] <= result["r2"] <= result["ci"][1]


@pytest.mark.slow
def test_ceiling_answers_descriptive_and_predictive_questions(fixed_splits):
    env, train, heldout = fixed_splits
    horizon = EvalConfig.horizon
    questions = [generate_questions(env, eps, 16, horizon, seed)
                 for eps, seed in ((train, 3003), (heldout, 4004))]
    assert len(questions[0]) >= 3000 and len(questions[1]) >= 900  # balanced: fewer (#25)
    vocab = attribute_vocab(train + heldout)
    tokens = [ceiling_features(eps, 16, vocab, 5).tokens for eps in (train, heldout)]
    result = evaluate_qa(*questions, {"ceiling": tokens[0]}, {"ceiling": tokens[1]},
                         QAHeadConfig())
    for qtype in ("descriptive", "predictive"):
        accuracy = result["subjects"]["ceiling"][qtype]
        assert accuracy["questions"] >= 100 and accuracy["per_option"] >= 0.8, (qtype, accuracy)
        assert accuracy["per_option_ci"][0] <= accuracy["per_option"] \
            <= accuracy["per_option_ci"][1]
    noise = [np.random.default_rng(0).normal(size=t.shape) for t in tokens]
    blind = evaluate_qa(*questions, {"noise": noise[0]}, {"noise": noise[1]},
                        QAHeadConfig(epochs=5))
    assert blind["subjects"]["noise"]["predictive"]["per_option"] < 0.6


def test_gap_closed_and_report_cells():
    assert gap_closed(0.5, 0.0, 1.0) == 0.5 and gap_closed(0.2, 0.2, 0.9) == 0.0
    assert np.isnan(gap_closed(0.3, 0.5, 0.5)) and np.isnan(gap_closed(0.3, 0.6, 0.5))
    low, high = t_interval([0.1, 0.2, 0.3])
    assert low < 0.1 and high > 0.3  # a t-interval of 3 values is wider than their range
    # the report's gap-closed cells: mean and t-interval over seeds; a nan run is counted
    assert ci_cell([0.1, 0.2, 0.3, float("nan")]) == f"+0.20 [{low:+.2f}, {high:+.2f}] (1 nan)"
    assert ci_cell([0.4]) == "0.400"


def test_unrebuildable_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    checkpoint = resolve_checkpoint(write_initial_checkpoint(tmp_path / "run", MODEL, seed=0))
    config = json.loads((checkpoint / "config.json").read_text())
    del config["seed"]
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="cannot be rebuilt"):
        initial_encoder(checkpoint)
    assert cli.main(["evaluate", f"ckpt={checkpoint}", *SMALL_EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be rebuilt" in err, err


def test_unsatisfiable_fixed_count_and_small_qa_split_exit_2(tmp_path, capsys):
    checkpoint = write_initial_checkpoint(tmp_path / "run", MODEL, seed=0)
    assert cli.main(["evaluate", f"ckpt={checkpoint}", *SMALL_EVAL, "fixed.count=13"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fixed.count=13" in err, err
    assert cli.main(["evaluate", f"ckpt={checkpoint}", *SMALL_EVAL, "qa.min_questions=500"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert last.startswith("ia-world evaluate: error: QA training split: too few questions")


def test_pixel_control_keeps_space_and_time_and_reads_speed():
    env = make_env("ia_world/Billiards-v0", size=32)
    grid = TokenGrid(frames=8, size=32, tubelet_t=2, patch=8)
    train = [simulate_episode(env, episode_seed(21, k), 8) for k in range(80)]
    test = [simulate_episode(env, episode_seed(22, k), 8) for k in range(40)]
    basis = fit_pixel_basis(split_clips(train, grid), grid.shape[0])
    assert [pca.n_components_ for pca in basis] == [64, 64]  # fitted on the training split
    a, b = (pixel_features(split_clips(s, grid), s, grid, basis) for s in (train, test))
    assert b.tokens.shape == (40, grid.shape[0], 128)  # one token per time step
    speed = [np.array([clip_targets(e, 8)["mean_speed"] for e in s]) for s in (train, test)]
    moving = fit_probe(a.vector, speed[0], b.vector, speed[1])
    still = fit_probe(a.tokens[:, :, :64].reshape(80, -1), speed[0],  # the frames' PCA only
                      b.tokens[:, :, :64].reshape(40, -1), speed[1])
    assert moving["r2"] > still["r2"]  # frame differences carry motion the frames alone lack
