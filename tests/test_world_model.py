"""World model: beats copy-last on held-out latents, block-causality, save/load; latent agent."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from agents.goal_probe import FIRST_WINDOW_PROBE, probe_logits
from agents.latent_agent import LatentAgent, LatentAgentConfig
from agents.placements import (
    draw_placements,
    encode_windows,
    episode_windows,
    frame_with_ball,
    recorded_chunks,
)
from agents.surprise import SurpriseConfig, make_pairs, score_pairs
from agents.window_cache import window_cache
from agents.world_model import WorldModelTrainConfig, check_zero_shot, train_stage
from agents.world_model_net import (
    WorldModel,
    WorldModelConfig,
    load_world_model,
    rollout_errors,
    save_world_model,
    train_world_model,
)
from envs.phyre_lite.scene import attempt, build_space, placement_error, render
from envs.phyre_lite.splits import role_tasks, split_tasks
from envs.phyre_lite.templates import parse_task_id
from ia_world.checkpoint import load_encoder
from ia_world.config import to_dataclass
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world_app.cli import parse

TINY = dict(latent_dim=8, tokens_per_window=4, max_windows=6, width=32, depth=1, heads=2,
            batch_size=32, lr=3e-3, rollout_steps=2)


def drifting_latents(count: int, seed: int, speed: float = 0.4) -> torch.Tensor:
    """(E, 6, 4, 8) sequences under a fixed rotation of each token (copy-last is wrong)."""
    generator = torch.Generator().manual_seed(seed)
    rotation = torch.linalg.matrix_exp(speed * (lambda a: a - a.T)(
        torch.randn(8, 8, generator=torch.Generator().manual_seed(99))))
    windows = [torch.randn(count, 4, 8, generator=generator)]
    for _ in range(5):
        windows.append(windows[-1] @ rotation)
    return torch.stack(windows, 1)


def test_rollout_beats_copy_last_on_held_out_latents():
    model = train_world_model(WorldModelConfig(**TINY, steps=300), drifting_latents(256, 0))
    errors = rollout_errors(model, drifting_latents(64, 1), context=2)
    assert errors["rollout_l1"] < 0.7 * errors["copy_last_l1"], errors


def test_joint_outcome_head_reads_the_outcome_from_the_rollout():
    """Label = a coordinate of the LAST window (the future): the head sees only the rollout."""
    from ia_world.eval.stats import auroc

    train, test = drifting_latents(256, 0), drifting_latents(128, 1)
    label = lambda windows: windows[:, -1, 0, 0] > 0  # noqa: E731
    config = WorldModelConfig(**TINY, steps=300, outcome_loss=1.0)
    with pytest.raises(DataError, match="needs the episodes' labels"):
        train_world_model(config, train)
    model = train_world_model(config, train, labels=label(train))
    with torch.no_grad():
        logits = model.outcome_logits(model.rollout(test[:, :1], test.shape[1] - 1))
    assert auroc(logits.numpy(), label(test).numpy()) > 0.9
    assert not hasattr(train_world_model(replace(config, outcome_loss=0.0, steps=1), train),
                       "outcome_weight")


@pytest.mark.slow
def test_rollout_beats_copy_last_on_real_encoder_latents_of_unseen_templates(tiny_checkpoint):
    """Frozen-encoder latents of simulated PHYRE-Lite rollouts; held out: the cross split's test
    templates, which the world model never saw."""
    encoder = load_encoder(tiny_checkpoint)
    train_tasks, test_tasks = split_tasks("cross", 0)
    cfg = WorldModelTrainConfig(encoder="x", episodes=160, windows=3, workers=1)
    windows = {name: torch.cat([episode_windows(encoder, chunk, 3, 4) for chunk in
                                recorded_chunks(draw_placements(tasks, count, cfg, seed)[0],
                                                cfg, 64)])
               for name, tasks, count, seed in (("train", train_tasks, 160, 0),
                                                ("test", test_tasks, 40, 1))}
    model = train_world_model(WorldModelConfig(
        latent_dim=encoder.embed_dim, tokens_per_window=4, max_windows=3, width=64, depth=1,
        steps=600,
        rollout_steps=1), windows["train"])
    errors = rollout_errors(model, windows["test"])
    assert errors["rollout_l1"] < 0.95 * errors["copy_last_l1"], errors


def test_best_weights_selected_on_validation_never_lose_to_copy_last():
    """Validation sequences rotate the other way: training hurts them, so step 0 is kept."""
    sequences = torch.cat([drifting_latents(90, 0), drifting_latents(10, 1, speed=-0.4)])
    config = WorldModelConfig(**TINY, steps=100, eval_every=20)  # validation = the last 10
    selected = rollout_errors(train_world_model(config, sequences), sequences[-10:])
    assert selected["rollout_l1"] == pytest.approx(selected["copy_last_l1"], rel=1e-6)
    config.validation = 0.0  # no selection: the last weights
    last = rollout_errors(train_world_model(config, sequences[:90]), sequences[-10:])
    assert last["rollout_l1"] > 1.1 * last["copy_last_l1"], last


def test_block_causal_future_does_not_change_past_predictions():
    model = WorldModel(WorldModelConfig(**TINY)).eval()
    torch.nn.init.normal_(model.head.weight)  # the residual head starts at zero
    windows = drifting_latents(2, 0)
    edited = windows.clone()
    edited[:, 4:] += 5.0
    with torch.no_grad():
        a, b = model(windows), model(edited)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    assert model.rollout(windows[:, :2], 3).shape == (2, 3, 4, 8)


def test_save_load_round_trip_and_errors(tmp_path):
    model = WorldModel(WorldModelConfig(**TINY)).eval()
    save_world_model(model, tmp_path, {"probe.weight": torch.ones(3)})
    loaded, extra = load_world_model(tmp_path)
    windows = drifting_latents(2, 0)
    with torch.no_grad():
        torch.testing.assert_close(model(windows), loaded(windows))
    torch.testing.assert_close(extra["probe.weight"], torch.ones(3))
    with pytest.raises(CheckpointError, match="missing"):
        load_world_model(tmp_path / "nope")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["format_version"] == 1
    del config["format_version"]  # as written before format versions: refused, naming the file
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json: format_version 0, .*reads 1 "):
        load_world_model(tmp_path)
    with pytest.raises(DataError, match="expected windows"):
        train_world_model(WorldModelConfig(**TINY, steps=1), torch.zeros(4, 3, 2, 8))


def test_latent_agent_trains_and_proposes_valid_ranked_actions(tiny_checkpoint,
                                                              tiny_world_model):
    encoder, wm = tiny_checkpoint, tiny_world_model
    metrics = json.loads((wm / "metrics.json").read_text())["metrics"]
    assert metrics["episodes"] == 8
    assert all(np.isfinite(metrics[part]["rollout_l1"]) for part in ("heldout", "test_tasks"))
    agent = LatentAgent(to_dataclass({
        "encoder": str(encoder), "world_model": str(wm),
        "planner": {"iterations": 2, "population": 8, "elites": 2, "batch_size": 8}},
        LatentAgentConfig))
    _, test = split_tasks("cross", 0)  # the agent never saw these templates
    puzzle = parse_task_id(test[0])
    space = build_space(puzzle)
    actions = agent.propose(render(space, 64), 12, puzzle)
    assert actions.shape == (12, 3)
    assert all(placement_error(space, a) is None for a in actions)
    scores = agent.score(space, actions[:8])  # the planned ones come first, best first
    assert np.isfinite(scores).all()
    # the ablation (agent.rollout=false) changes the scoring only: same candidates, same
    # invalid ones, scores = the window-0 probe on the encoded placement
    still = LatentAgent(replace(agent.cfg, rollout=False))
    candidates = np.concatenate([actions[:4], [[0.5, 0.0, 1.0]]])  # the last one is invalid
    ablated, full = still.score(space, candidates), agent.score(space, candidates)
    assert np.isneginf(ablated[-1]) and np.isneginf(full[-1])
    assert np.isfinite(ablated[:-1]).all() and not np.allclose(ablated[:-1], full[:-1])
    frames = np.stack([frame_with_ball(space, a, 64) for a in candidates[:-1]])
    context = encode_windows(still.encoder, np.repeat(frames[:, None], 16, 1),
                             still.model.cfg.tokens_per_window)
    np.testing.assert_allclose(ablated[:-1], probe_logits(still.extra, context.flatten(1),
                                                          FIRST_WINDOW_PROBE).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(actions, agent.propose(render(space, 64), 12, puzzle))
    fit = role_tasks("cross", 0)["fit"]  # its own training puzzles are refused, as is another fold
    seen = parse_task_id(fit[0])
    with pytest.raises(ConfigError, match="split=cross fold=0.*zero-shot"):
        agent.propose(render(build_space(seen), 64), 12, seen)
    _, extra = load_world_model(wm)
    check_zero_shot(wm, extra, test)
    with pytest.raises(ConfigError, match="train tasks include 200 of the 200 test puzzles"):
        check_zero_shot(wm, extra, split_tasks("cross", 2)[1])


def test_surprise_pairs_differ_only_after_teleport_and_score_end_to_end(tiny_checkpoint):
    encoder_path = tiny_checkpoint
    model = WorldModel(WorldModelConfig(latent_dim=96, max_windows=6, width=32, depth=1,
                                        heads=2)).eval()
    cfg = SurpriseConfig(encoder="x", world_model="x", pairs=2, windows=3)
    _, test = split_tasks("cross", 0)
    pairs = make_pairs(test, cfg, clip_frames=16, size=64)
    for possible, impossible in pairs:
        np.testing.assert_array_equal(possible.frames[:24], impossible.frames[:24])
        assert (possible.frames[24] != impossible.frames[24]).any()
    metrics = score_pairs(load_encoder(encoder_path), model, torch.ones(cfg.windows - 1), pairs)
    assert metrics["pairs"] == 2 and 0.0 <= metrics["auroc"] <= 1.0


def test_state_tokens_put_the_ball_and_green_first_with_their_roles():
    from agents.placements import STATE_COLORS, STATE_SLOTS, placement_state, state_tokens

    puzzle = parse_task_id(split_tasks("within", 0)[1][0])
    space = build_space(puzzle)
    bodies = placement_state(space, [0.5, 0.9, 0.3])
    tokens = state_tokens(bodies)
    assert tokens.shape[0] == STATE_SLOTS
    assert tokens[0, 7 + STATE_COLORS.index("red")] == 1 and tokens[0, 0] == 1
    assert tokens[1, 7 + STATE_COLORS.index("green")] == 1
    assert tokens[0, 1:3] == pytest.approx([0.5, 0.9], abs=0.05)  # x, y in scene units / 256
    present = int(tokens[:, 0].sum())
    assert present == min(len(bodies), STATE_SLOTS) and not tokens[present:].any()


def test_state_world_model_trains_and_plans_and_refuses_the_wrong_agent(tmp_path):
    from agents.latent_agent import StateAgentConfig

    out = train_stage(parse("world_model", [
        "features=state", f"out={tmp_path / 'swm'}", "split=within", "episodes=8",
        "test_episodes=4", "workers=1", "windows=3", "probe_steps=5", "world_model.steps=3",
        "world_model.batch_size=4", "world_model.rollout_steps=1"]))
    agent = LatentAgent(to_dataclass({"world_model": str(out), "planner": {
        "iterations": 1, "population": 8, "elites": 2, "batch_size": 8}}, StateAgentConfig))
    puzzle = parse_task_id(split_tasks("within", 0)[1][0])
    space = build_space(puzzle)
    actions = agent.propose(render(space, 64), 6, puzzle)
    assert actions.shape == (6, 3) and all(placement_error(space, a) is None for a in actions)
    with pytest.raises(ConfigError, match="needs agent=state_wm"):
        LatentAgent(to_dataclass({"encoder": "x", "world_model": str(out)}, LatentAgentConfig))


@pytest.mark.slow
def test_balanced_placements_solve_in_the_asked_share_in_random_order(monkeypatch):
    import agents.placements as placements_module

    train, _ = split_tasks("within", 0)
    cfg = WorldModelTrainConfig(features="state", split="within", solved_share=0.5, workers=1)
    placements, drawn_share = draw_placements(train, 12, cfg, seed=3)
    solved = [attempt(build_space(parse_task_id(task)), action).solved
              for task, action in placements]
    assert sum(solved) == 6 and solved != sorted(solved, reverse=True)  # shuffled, not blocks
    assert 0 < drawn_share < 0.5  # random placements solve far less often (~5%)
    again, again_share = draw_placements(train, 12, replace(cfg, workers=2), seed=3)
    assert [(t, a.tolist()) for t, a in again] == [(t, a.tolist()) for t, a in placements]
    assert again_share == drawn_share  # the same draws whatever the number of workers
    monkeypatch.setattr(placements_module, "MAX_DRAWS_PER_EPISODE", 2)
    with pytest.raises(ConfigError, match=r"solved_share=0.8: only \d of 10 placements solved"):
        draw_placements(train, 5, replace(cfg, solved_share=0.8), seed=0)


def test_window_cache_is_reused_keyed_and_checked(tmp_path, monkeypatch):
    import agents.window_cache as window_cache_module

    args = ["features=state", "split=within", "episodes=8", "test_episodes=4", "workers=1",
            "windows=3",
            "probe_steps=5", "world_model.steps=3", "world_model.batch_size=4",
            "world_model.rollout_steps=1", f"cache={tmp_path / 'cache'}"]
    first = train_stage(parse("world_model", args + [f"out={tmp_path / 'a'}"]))
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0] == window_cache(parse("world_model", args))
    monkeypatch.setattr(window_cache_module, "recorded_chunks", lambda *a: pytest.fail("simulated"))
    second = train_stage(parse("world_model", args + [f"out={tmp_path / 'b'}"]))
    assert (first / "metrics.json").read_text().replace(str(first), "") == \
        (second / "metrics.json").read_text().replace(str(second), "")
    assert window_cache(parse("world_model", args + ["seed=1"])) != cached[0]
    cached[0].write_bytes(b"not safetensors")
    with pytest.raises(DataError, match=f"{cached[0].name}: corrupt window cache"):
        train_stage(parse("world_model", args + [f"out={tmp_path / 'c'}"]))


def test_action_conditioned_state_world_model_uses_the_placement(tmp_path):
    from agents.latent_agent import StateAgentConfig

    out = train_stage(parse("world_model", [
        "features=state", f"out={tmp_path / 'swm'}", "split=within", "episodes=8",
        "test_episodes=4", "workers=1", "windows=3", "probe_steps=5", "world_model.steps=3",
        "world_model.batch_size=4", "world_model.rollout_steps=1", "condition_action=true"]))
    agent = LatentAgent(to_dataclass({"world_model": str(out), "planner": {
        "iterations": 1, "population": 8, "elites": 2, "batch_size": 8}}, StateAgentConfig))
    assert agent.model.cfg.action_dim == 3
    torch.nn.init.normal_(agent.model.head.weight)  # 3 steps barely move the zero-init head
    puzzle = parse_task_id(split_tasks("within", 0)[1][0])
    space = build_space(puzzle)
    context = agent.first_windows(space, np.array([[0.5, 0.9, 0.3]]))[:, None]
    rolled = [agent.model.rollout(context, 2, torch.tensor([action]))
              for action in ([0.5, 0.9, 0.3], [0.1, 0.1, 0.1])]
    assert not torch.allclose(*rolled)  # same first window, another placement: another future
    actions = agent.propose(render(space, 64), 6, puzzle)
    assert actions.shape == (6, 3) and all(placement_error(space, a) is None for a in actions)
    still = LatentAgent(replace(agent.cfg, rollout=False))  # its window-0 probe sees the action
    assert still.extra[f"{FIRST_WINDOW_PROBE}weight"].numel() == context[0].numel() + 3
    assert np.isfinite(still.score(space, actions)).all()


@pytest.mark.slow
def test_state_world_model_planner_beats_random_on_a_tiny_within_fold(tmp_path):
    from agents.solve import SolveConfig, solve

    out = train_stage(parse("world_model", [
        "features=state", f"out={tmp_path / 'swm'}", "split=within", "episodes=300",
        "workers=1", "test_episodes=0", "windows=3", "probe_steps=200", "world_model.steps=20",
        "world_model.width=32", "world_model.depth=1", "world_model.heads=2",
        "world_model.batch_size=16", "world_model.rollout_steps=1", "world_model.eval_every=10"]))
    planner = {"iterations": 2, "population": 16, "elites": 4, "batch_size": 16}
    common = dict(split="within", puzzles=2, attempts=20, videos=False, out=str(tmp_path))
    state = solve(SolveConfig(agent={"name": "state_wm", "world_model": str(out),
                                     "planner": planner, "ablation": False}, **common))
    floor = solve(SolveConfig(agent={"name": "random"}, **common))
    assert state["overall"]["puzzles"] == floor["overall"]["puzzles"] == 20
    assert state["overall"]["auccess"] > 1.5 * floor["overall"]["auccess"]
