"""Learning curves (`pretrain probe_every=`), the loss split by token class and its weights."""

import csv

import numpy as np
import pytest
import torch
from test_training import pretrain_config, stored_saliency_dataset, train_killed_at

from ia_world import training
from ia_world.checkpoint import (
    BEST_DIR,
    MODEL_FILE,
    curve_encoders,
    initial_encoder,
    load_encoder,
    read_metrics,
    read_tensors,
    write_floor_checkpoint,
)
from ia_world.data.generator import EnvConfig
from ia_world.data.shards import episode_seed
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.eval.curves import (
    CURVE_FIELDS,
    CurveConfig,
    curve_metrics,
    curve_splits,
    curve_step_cis,
)
from ia_world.eval.simulated import FixedSplitConfig
from ia_world.masking.saliency import INTERACTING_LEVEL, token_classes
from ia_world.models import IAJEPA, ModelConfig
from ia_world.models.jepa import frame_means, position_centred, regularization
from ia_world.report import curves_figure, curves_markdown, curves_plot, run_curve
from ia_world.tokens import TokenGrid

TINY_CURVES = ("probe.train_episodes=12", "probe.heldout_episodes=8",
               "probe.collision_train=8", "probe.collision_heldout=4", "model.frames=8")


def rows(out) -> list[dict]:
    """The run's log.csv rows."""
    with (out / training.LOG_FILE).open() as handle:
        return list(csv.DictReader(handle))


def test_token_classes_mark_static_moving_and_interacting_tokens():
    grid = TokenGrid(4, 32, 2, 8)
    clip = torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8)
    for t in range(4):
        clip[0, t, 8:16, 2 * t:2 * t + 4] = 255  # a square sliding right in patch row 1
    classes = token_classes(clip, grid)
    moving = torch.zeros(grid.num_tokens, dtype=torch.long)
    moving[[4, 16 + 4, 16 + 5]] = 1  # row 1: column 0, then columns 0 and 1 (pixels 8-10)
    assert torch.equal(classes[0], moving)
    interaction = torch.zeros(1, grid.num_tokens)
    interaction[0, [5, 30]] = INTERACTING_LEVEL
    marked = token_classes(clip, grid, interaction)[0]
    assert marked[5] == 2 and marked[30] == 2 and int((marked == 2).sum()) == 2
    assert torch.equal(marked[marked != 2], moving[marked != 2])


def test_token_weights_weight_the_prediction_loss():
    cfg = ModelConfig(frames=4, size=32, embed_dim=48, depth=1, num_heads=3, pred_dim=24,
                      pred_depth=1, pred_heads=3)
    torch.manual_seed(0)
    model = IAJEPA(cfg)
    frames = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 16:] = True
    plain = model(frames, mask)
    assert torch.allclose(plain.token_loss.sum(), plain.loss)
    weight = torch.ones(2, 32)
    weight[:, 16:24] = 4.0  # half of the hidden tokens count 4x
    weighted = model(frames, mask, weight)
    error = plain.token_loss * plain.token_loss.numel()          # each hidden token's error
    expected = (error * weight[:, 16:]).sum() / weight[:, 16:].sum()
    assert torch.allclose(weighted.loss, expected) and not torch.allclose(weighted.loss, plain.loss)
    assert torch.allclose(model(frames, mask, torch.ones(2, 32)).loss, plain.loss)
    classes = torch.tensor([[0, 1, 2, 1]])
    assert training.token_weights(training.PretrainConfig(), classes) is None
    cfg = training.PretrainConfig(moving_weight=4.0, interacting_weight=8.0)
    assert training.token_weights(cfg, classes).tolist() == [[1.0, 4.0, 8.0, 4.0]]


def test_the_moving_weight_reaches_the_training_loss(tmp_path):
    # fails if moving_weight is switched off on the way from the config to the loss
    losses = {}
    for weight in ("1", "8"):
        out = tmp_path / weight
        training.train(pretrain_config(out, "steps=2", f"moving_weight={weight}",
                                       "masking=interaction"))
        losses[weight] = [float(row["loss"]) for row in rows(out)]
    assert losses["1"][0] != pytest.approx(losses["8"][0], rel=1e-3)


def test_the_loss_parts_sum_to_the_logged_loss(tmp_path):
    data = stored_saliency_dataset(tmp_path / "data")
    out = tmp_path / "run"
    training.train(pretrain_config(out, f"data={data}", "masking=interaction", "steps=3",
                                   "regularizer=vicreg", "regularizer_weight=0.5",
                                   "masking.future=0.5", "moving_weight=3"))
    logged = rows(out)
    assert len(logged) == 3
    for row in logged:
        parts = sum(float(row[f"loss_{name}"]) for name in ("static", "moving", "interacting",
                                                             "regularizer"))
        assert parts == pytest.approx(float(row["loss"]), rel=1e-4)
        assert float(row["loss_regularizer"]) > 0 and 0 < float(row["share_moving"]) < 1
        assert float(row["context_norm"]) > 0 and float(row["target_norm"]) > 0
        assert 1 <= float(row["context_rankme_centred"]) <= 96  # the tiny model's width


def test_a_curve_logging_run_starts_at_its_floor_and_resumes_exactly(tmp_path, monkeypatch):
    args = ("steps=4", "checkpoint_every=2", "probe_every=2", "log_every=3", *TINY_CURVES)
    whole = tmp_path / "whole"
    training.train(pretrain_config(whole, *args))
    logged = rows(whole)
    assert [row["step"] for row in logged] == ["0", "2", "3", "4"]  # probe, log and last steps
    assert all(logged[i][field] for i in (0, 1, 3) for field in CURVE_FIELDS)
    assert not logged[0]["loss"] and not logged[2]["probe_mean_speed"]
    cfg = pretrain_config(whole, *args)
    splits = curve_splits(cfg.probe, EnvConfig(), cfg.model.grid)
    floor = curve_metrics(initial_encoder(whole).encoder, splits, cfg.model.grid)
    assert [float(logged[0][key]) for key in CURVE_FIELDS] == pytest.approx(
        [floor[key] for key in CURVE_FIELDS], rel=1e-5)
    assert np.isfinite([float(logged[3][key]) for key in CURVE_FIELDS]).all()
    strategy, curve = run_curve(whole)  # what `report` and `compare` plot
    assert strategy == "random_tube" and [s for s, _ in curve["probe_mean_speed"]] == [0, 2, 4]
    assert "| random_tube | 0 | 1 |" in curves_markdown([(strategy, curve)])
    curves_plot([(strategy, curve)], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert run_curve(tmp_path) is None
    killed = tmp_path / "killed"
    train_killed_at(monkeypatch, pretrain_config(killed, *args), 3)
    training.train(pretrain_config(killed, *args))
    resumed = rows(killed)
    timing = {"clips_per_s", "data_s", "compute_s"}
    assert [{k: v for k, v in row.items() if k not in timing} for row in resumed] == \
        [{k: v for k, v in row.items() if k not in timing} for row in logged]


def test_keep_best_holds_the_best_probed_step_and_survives_a_resume(tmp_path, monkeypatch):
    args = (*TINY_CURVES, "steps=4", "probe_every=1", "checkpoint_every=1", "keep_checkpoints=4")
    whole = tmp_path / "whole"
    training.train(pretrain_config(whole, *args))
    trained = [row for row in rows(whole) if row["loss"]]
    top = max(trained, key=lambda row: float(row["probe_mean_speed"]))
    best = read_metrics(whole / BEST_DIR / "metrics.json")
    assert best["step"] == int(top["step"])
    assert best["probe_mean_speed"] == pytest.approx(float(top["probe_mean_speed"]), rel=1e-5)
    kept = read_tensors(whole / BEST_DIR / MODEL_FILE)
    at_step = read_tensors(whole / "checkpoints" / f"step-{best['step']:08d}" / MODEL_FILE)
    assert kept.keys() == at_step.keys() and all(torch.equal(kept[k], at_step[k]) for k in kept)
    assert load_encoder(whole / BEST_DIR).embed_dim == 48
    killed = tmp_path / "killed"
    train_killed_at(monkeypatch, pretrain_config(killed, *args), 3)
    training.train(pretrain_config(killed, *args))
    assert read_metrics(killed / BEST_DIR / "metrics.json")["step"] == best["step"]
    off = tmp_path / "off"
    training.train(pretrain_config(off, *TINY_CURVES, "steps=1", "probe_every=1", "keep_best="))
    assert rows(off)[-1]["probe_mean_speed"] and not (off / BEST_DIR).exists()
    with pytest.raises(ConfigError, match="keep_best"):
        training.PretrainConfig(keep_best="loss").validate()


def test_a_frozen_target_run_trains_probes_and_serves_its_online_encoder(tmp_path):
    # ema_start=1.0 freezes the target at its initialisation: what the run trains (and what
    # the curves probe, `evaluate` scores and the agents load by default) is the online encoder
    args = (*TINY_CURVES, "steps=2", "probe_every=2", "ema_start=1.0", "ema_end=1.0")
    out = tmp_path / "frozen"
    training.train(pretrain_config(out, *args))
    cfg = pretrain_config(out, *args)
    splits = curve_splits(cfg.probe, EnvConfig(), cfg.model.grid)
    start = initial_encoder(out).encoder.state_dict()
    target = load_encoder(out, weights="target").encoder.state_dict()
    assert all(torch.equal(target[k], v) for k, v in start.items())  # never updated
    floor = load_encoder(write_floor_checkpoint(out, tmp_path / "floor")).encoder.state_dict()
    assert all(torch.equal(floor[k], v) for k, v in start.items())  # the agents' control
    online = load_encoder(out, weights="encoder").encoder.state_dict()
    trained = load_encoder(out).encoder.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in online.items())
    assert not all(torch.equal(online[k], v) for k, v in start.items())
    logged = rows(out)[-1]
    probed = curve_metrics(load_encoder(out).encoder, splits, cfg.model.grid)
    floor = curve_metrics(initial_encoder(out).encoder, splits, cfg.model.grid)
    assert float(logged["probe_mean_speed"]) == pytest.approx(probed["probe_mean_speed"], rel=1e-5)
    assert float(logged["probe_mean_speed"]) != pytest.approx(floor["probe_mean_speed"], rel=1e-3)
    with pytest.raises(ConfigError, match="probe_weights"):
        training.PretrainConfig(probe_weights="ema").validate()


def test_curve_config_rejects_splits_too_small_to_fit():
    with pytest.raises(Exception, match="train_episodes"):
        CurveConfig(train_episodes=2).validate()


def test_frame_means_average_the_tokens_of_each_clip_step():
    latents = torch.arange(24.0).reshape(2, 4, 3)                  # B n D
    token_idx = torch.tensor([[0, 3, 4, 7], [8, 9, 10, 11]])       # 4 tokens per step
    means = frame_means(latents, token_idx, tokens_per_frame=4, num_frames=3)
    expected = torch.stack([latents[0, :2].mean(0), latents[0, 2:].mean(0),
                            latents[1, :].mean(0)])                 # steps (0, 0) (0, 1) (1, 2)
    assert torch.equal(means, expected)


def test_the_frame_pooled_regularizer_sees_collapse_the_token_one_misses():
    # every clip step has the same mean latent, while its tokens spread: collapsed per step
    torch.manual_seed(0)
    spread = torch.randn(4, 64, 16)
    tokens = spread - spread.mean(1, keepdim=True)                 # each clip's mean is 0
    token_idx = torch.arange(64).repeat(4, 1)                      # one step of 64 tokens
    pooled = frame_means(tokens, token_idx, tokens_per_frame=64, num_frames=1)
    assert float(regularization("vicreg", pooled)) > 0.9                # variance hinge ~1
    assert float(regularization("vicreg", tokens)) < 0.3


def test_the_regularizer_pool_reaches_the_training_loss(tmp_path):
    # fails if regularizer_pool is switched off on the way from the config to the loss
    parts = {}
    for pool in ("tokens", "frames"):
        out = tmp_path / pool
        training.train(pretrain_config(out, "steps=1", "regularizer=vicreg",
                                       "regularizer_weight=1", f"regularizer_pool={pool}"))
        parts[pool] = float(rows(out)[0]["loss_regularizer"])
    assert parts["frames"] != pytest.approx(parts["tokens"], rel=1e-3)
    with pytest.raises(ConfigError, match="regularizer_pool"):
        training.PretrainConfig(regularizer_pool="clips").validate()


def test_position_centred_removes_each_positions_batch_mean():
    latents = torch.arange(12.0).reshape(2, 2, 3)                  # B n D
    token_idx = torch.tensor([[0, 5], [5, 2]])                     # position 5 in both clips
    centred = position_centred(latents, token_idx, num_tokens=8)
    shared = (latents[0, 1] + latents[1, 0]) / 2
    expected = torch.stack([torch.stack([torch.zeros(3), latents[0, 1] - shared]),
                            torch.stack([latents[1, 0] - shared, torch.zeros(3)])])
    assert torch.equal(centred, expected)


def test_centred_positions_leave_nothing_to_predict_in_identical_clips():
    # fails if centre_positions is switched off: identical clips share everything at every
    # position, so their centred targets are 0 and their centred context latents collapse
    cfg = ModelConfig(frames=4, size=32, embed_dim=48, depth=1, num_heads=3, pred_dim=24,
                      pred_depth=1, pred_heads=3)
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8).expand(4, -1, -1, -1, -1)
    mask = torch.zeros(4, 32, dtype=torch.bool)
    mask[:, 16:] = True
    outputs = {}
    for centre in (False, True):
        torch.manual_seed(0)
        model = IAJEPA(cfg, regularizer="vicreg", regularizer_weight=1.0,
                       centre_positions=centre)
        outputs[centre] = model(frames, mask)
    assert float(outputs[True].targets.abs().max()) < 1e-5
    assert float(outputs[False].targets.abs().mean()) > 0.5        # layer-normed: ~unit scale
    assert float(outputs[True].regularizer) > 0.98                 # variance hinge ~1: collapsed
    assert float(outputs[False].regularizer) < float(outputs[True].regularizer) - 0.1


def test_centre_positions_reaches_the_training_loss(tmp_path):
    # fails if centre_positions is switched off on the way from the config to the loss
    losses = {}
    for centre in ("false", "true"):
        out = tmp_path / centre
        training.train(pretrain_config(out, "steps=1", f"centre_positions={centre}"))
        losses[centre] = float(rows(out)[0]["loss"])
    assert losses["true"] < losses["false"] - 0.05   # the shared part is no longer predicted


def test_curve_splits_refuse_episodes_the_run_trains_on():
    cfg = CurveConfig(train_episodes=8, heldout_episodes=2, collision_train=8,
                      collision_heldout=2)
    grid = TokenGrid(8, 64, 2, 8)
    trained_on = frozenset({episode_seed(FixedSplitConfig().train_seed, 3)})
    with pytest.raises(DataError, match="pretraining"):
        curve_splits(cfg, EnvConfig(), grid, trained_on)


def test_the_curve_figure_draws_each_runs_own_floor():
    """Runs of different initialisations keep their own floor lines, not one mean line."""
    def curve(floor: float) -> dict:
        return {name: [(0, floor), (500, floor + 0.1)] for name in CURVE_FIELDS}

    fig = curves_figure([("interaction (8 px)", curve(0.5)), ("interaction (4 px)", curve(0.7)),
                         ("random_tube (8 px)", curve(0.5))])
    for ax in fig.axes:
        floors = sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--")
        assert floors == pytest.approx([0.5, 0.5, 0.7])  # 0.5 once per colour, never 0.6


def test_curve_intervals_mark_a_fall_and_nothing_where_the_curve_holds():
    """Paired intervals per step: a checkpoint equal to the previous one differs by exactly 0,
    a clearly worse one is below both the previous step and the floor."""
    rng = np.random.default_rng(0)
    true = rng.normal(size=256)
    better = true + 0.3 * rng.normal(size=256)
    predicted = {0: true + 1.0 * rng.normal(size=256), 1000: better, 2000: better.copy(),
                 3000: true + 2.0 * rng.normal(size=256)}
    curve = curve_step_cis(true, predicted)
    assert curve[0]["vs_previous"] is None and curve[0]["vs_floor"] is None
    assert curve[1000]["vs_floor"][0] > 0                       # learned: above the floor
    assert curve[2000]["vs_previous"] == [0.0, 0.0]              # held: no difference at all
    assert curve[3000]["vs_previous"][1] < 0 and curve[3000]["vs_floor"][1] < 0   # fell back
    assert curve[3000]["r2"] < curve[0]["r2"] < curve[1000]["r2"]
    assert curve_step_cis(true, predicted) == curve              # the same seed, the same CIs


def test_curve_encoders_are_the_floor_then_every_kept_checkpoint_in_step_order(tmp_path):
    out = tmp_path / "run"
    training.train(pretrain_config(out, "steps=2", "checkpoint_every=1", "keep_checkpoints=3"))
    encoders = curve_encoders(out)
    assert [step for step, _ in encoders] == [0, 1, 2]

    def weights(encoder):
        return list(encoder.encoder.state_dict().values())

    floor, last = initial_encoder(out), load_encoder(out)
    assert all(torch.equal(a, b) for a, b in zip(weights(encoders[0][1]), weights(floor)))
    assert all(torch.equal(a, b) for a, b in zip(weights(encoders[2][1]), weights(last)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(encoders[2][1]), weights(floor)))
    with pytest.raises(CheckpointError, match="no checkpoints/step-"):
        curve_encoders(tmp_path)
