"""Planner statistics: bootstrap CIs over puzzles, paired differences, runs over seeds and world
models, the random floor over seeds, and goal probes fit on episodes the dynamics never saw."""

import json

import numpy as np
import pytest
import torch

from agents.planner_stats import auccess_ci, paired_difference, planner_statistics
from agents.solve import SolveConfig, held_out_tasks, solve
from envs.phyre_lite.splits import NUM_FOLDS, SPLITS, role_tasks, split_tasks
from ia_world.errors import ConfigError
from ia_world_app.cli import parse

TINY_WORLD_MODEL = ["features=state", "split=within", "episodes=12", "test_episodes=0",
                    "workers=1", "windows=3", "probe_steps=5", "world_model.steps=3",
                    "world_model.batch_size=4", "world_model.rollout_steps=1"]


def puzzle_values(count: int, seed: int) -> np.ndarray:
    """Per-puzzle AUCCESS-like values: 0 for 70% of puzzles, else uniform in (0, 1]."""
    rng = np.random.default_rng(seed)
    return (rng.random(count) < 0.3) * rng.uniform(0.01, 1.0, count)


def test_puzzle_bootstrap_contains_the_mean_narrows_and_is_seeded():
    widths = []
    for count in (20, 80, 320):
        values = puzzle_values(count, seed=count)
        low, high = auccess_ci(values)
        assert low < values.mean() < high
        assert auccess_ci(values) == [low, high]  # seeded: the same interval every time
        widths.append(high - low)
    assert widths[0] > 1.5 * widths[1] > 1.5 * 1.5 * widths[2]  # ~ 1 / sqrt(puzzles)


def test_paired_difference_of_an_agent_with_itself_is_exactly_zero():
    values = puzzle_values(40, seed=1)
    assert paired_difference(values, values) == {"difference": 0.0, "ci": [0.0, 0.0]}
    shifted = paired_difference(values + 0.1, values)  # a constant shift: paired CI is a point
    assert shifted["difference"] == pytest.approx(0.1)
    assert shifted["ci"] == pytest.approx([0.1, 0.1])
    unpaired_width = np.diff(auccess_ci(values + 0.1))[0]
    assert unpaired_width > 0.05  # the puzzles' spread, which pairing removes
    with pytest.raises(ValueError, match="not the same puzzles"):
        paired_difference(values, values[:-1])


def test_runs_are_averaged_per_world_model_and_compared_across_them():
    rng = np.random.default_rng(0)
    agent = rng.random((3, 2, 30))  # 3 world models x 2 agent seeds x 30 puzzles
    floor = rng.random((5, 30)) * 0.2
    stats = planner_statistics(agent, 200, floor, without_rollout=agent)
    assert stats["unit"] == "world_model" and len(stats["runs"]) == 6
    across = stats["auccess"]["across"]
    np.testing.assert_allclose(across["values"], agent.mean((1, 2)))
    assert across["n"] == 3 and across["ci"][0] < across["mean"] < across["ci"][1]
    assert stats["floor"]["across"]["n"] == 5
    difference = stats["agent - floor"]
    assert difference["difference"] == pytest.approx(agent.mean() - floor.mean())
    assert len(difference["per_unit"]) == 3 and difference["ci"][0] > 0
    itself = stats["rollout - window-0"]
    assert itself["difference"] == 0 and itself["ci"] == [0, 0]
    assert itself["across"]["values"] == [0, 0, 0]
    one = planner_statistics(agent[:1], 200)  # one world model: the unit is the agent seed
    assert one["unit"] == "seed" and one["auccess"]["across"]["n"] == 2 and "floor" not in one
    nan_run = planner_statistics(np.where(np.arange(3)[:, None, None] == 0, np.nan, agent), 50)
    assert nan_run["auccess"]["across"]["nan"] == 1  # counted, not dropped silently


def test_random_floor_over_seeds_is_deterministic_and_paired_with_the_agent(tmp_path):
    tasks = held_out_tasks("within", 0, 1)[:3]
    common = dict(tasks=tasks, attempts=15, videos=False, floor_seeds=[0, 1, 2, 3, 4],
                  bootstrap=200)
    first = solve(SolveConfig(agent={"name": "random", "seed": 0}, out=str(tmp_path / "a"),
                              **common))
    solve(SolveConfig(agent={"name": "random", "seed": 0}, out=str(tmp_path / "b"), **common))
    a, b = (json.loads((tmp_path / d / "random_within_fold0" / "results.json").read_text())
            for d in "ab")
    assert a["statistics"] == b["statistics"]  # same seeds, same AUCCESS and intervals
    floor = a["statistics"]["floor"]
    assert floor["across"]["n"] == 5 and len(set(floor["across"]["values"])) > 1
    low, high = first["overall"]["auccess_ci"]
    assert low <= first["overall"]["auccess"] <= high
    assert a["statistics"]["agent - floor"]["difference"] == pytest.approx(
        first["overall"]["auccess"] - floor["mean"])
    same = solve(SolveConfig(agent={"name": "random"}, out=str(tmp_path / "c"),
                             **{**common, "floor_seeds": [0]}))
    stats = json.loads((tmp_path / "c" / "random_within_fold0" / "results.json").read_text())
    assert stats["statistics"]["agent - floor"]["ci"] == [0.0, 0.0]  # the same run: exactly 0
    assert same["overall"]["auccess"] == first["overall"]["auccess"]
    with pytest.raises(ConfigError, match="world_models: agent=random has no world model"):
        solve(SolveConfig(agent={"name": "random"}, world_models=["x"], out=str(tmp_path)))


def test_goal_probes_learn_on_episodes_the_dynamics_never_saw(tmp_path, monkeypatch):
    import agents.window_cache as window_cache
    import agents.world_model as world_model

    seen = {}

    def spy(name: str, attribute: str) -> None:
        function = getattr(world_model, attribute)

        def wrapped(first, windows, *args):  # windows (E K P D): episodes by their window 0
            seen[name] = {bytes(episode[0].numpy()) for episode in windows}
            return function(first, windows, *args)
        monkeypatch.setattr(world_model, attribute, wrapped)

    spy("probes", "fit_goal_probes")
    spy("dynamics", "train_world_model")
    drawn = []
    draw = window_cache.draw_placements
    monkeypatch.setattr(window_cache, "draw_placements",
                        lambda tasks, *args: drawn.append(tasks) or draw(tasks, *args))
    out = world_model.train_stage(parse("world_model", TINY_WORLD_MODEL + [
        f"out={tmp_path / 'wm'}", "probe_share=0.25"]))
    roles = json.loads((out / "metrics.json").read_text())["metrics"]["episode_roles"]
    assert roles == {"heldout": [0, 2], "probe": [2, 5], "dynamics": [5, 12]}
    assert len(seen["probes"]) == 3 and len(seen["dynamics"]) == 7  # distinct episodes each
    assert not seen["probes"] & seen["dynamics"]
    assert drawn[0] == role_tasks("within", 0)["fit"]  # train episodes: never a val puzzle
    with pytest.raises(ConfigError, match="leave fewer than 2 of episodes=12"):
        parse("world_model", TINY_WORLD_MODEL + ["holdout=0.5", "probe_share=0.5"])


def test_solve_runs_every_world_model_and_seed_with_the_rollout_ablation(tmp_path):
    from agents.world_model import train_stage

    dirs = [str(train_stage(parse("world_model", TINY_WORLD_MODEL + [
        f"out={tmp_path / f'wm{seed}'}", f"world_model.seed={seed}"]))) for seed in (0, 1)]
    planner = {"iterations": 1, "population": 8, "elites": 2, "batch_size": 8}
    summary = solve(SolveConfig(
        agent={"name": "state_wm", "world_model": dirs[0], "planner": planner},
        world_models=dirs, seeds=[0, 1], floor_seeds=[0, 1], tasks=held_out_tasks(
            "within", 0, 1)[:2], attempts=5, videos=False, bootstrap=100, out=str(tmp_path)))
    results = json.loads((tmp_path / "state_wm_within_fold0" / "results.json").read_text())
    stats = results["statistics"]
    assert stats["unit"] == "world_model" and stats["auccess"]["across"]["n"] == 2
    assert [run["label"] for run in results["runs"]] == [
        f"seed={s} world_model={d}" for d in dirs for s in (0, 1)]
    assert stats["rollout - window-0"]["across"]["n"] == 2
    assert summary["overall"]["puzzles"] == 2 and "without_rollout" in results
    assert stats["runs"][0]["auccess"] == pytest.approx(summary["overall"]["auccess"])


def test_val_puzzles_are_train_tasks_the_world_model_never_fits_and_never_test():
    from agents.world_model import check_zero_shot

    for split in SPLITS:
        for fold in range(NUM_FOLDS):
            roles = role_tasks(split, fold)
            train, test = split_tasks(split, fold)
            assert sorted(roles["fit"] + roles["val"]) == sorted(train) and roles["test"] == test
            assert not set(roles["val"]) & set(test) and len(roles["val"]) == len(test)
            if split == "cross":  # val templates are neither fit nor test templates
                names = {role: {t.split(":")[0] for t in roles[role]} for role in roles}
                assert not names["val"] & (names["fit"] | names["test"])
    val = held_out_tasks("within", 0, 1, role="val")
    assert len(val) == 10 and set(val) <= set(role_tasks("within", 0)["val"])
    assert not set(val) & set(held_out_tasks("within", 0, 0))
    within = {"train.split": torch.tensor(0), "train.fold": torch.tensor(0)}
    check_zero_shot("wm", {**within, "train.val_held": torch.tensor(1)}, val)  # never fit on
    with pytest.raises(ConfigError, match="include 10 of the 10"):  # written before val: refused
        check_zero_shot("old", within, val)
