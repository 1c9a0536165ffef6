"""PHYRE-Lite: templates solvable by the oracle, AUCCESS, determinism, validity, folds, CLI."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers ia_world/PhyreLite-v0)
from agents.baselines import OracleAgent, OracleConfig, RandomAgent, RandomConfig
from agents.solve import solve_puzzle
from envs.phyre_lite import (
    NUM_FOLDS,
    TEMPLATES,
    VARIANTS_PER_TEMPLATE,
    attempt,
    auccess,
    build_space,
    make_puzzle,
    mean_auccess,
    placement_error,
    split_tasks,
    success_at,
)
from ia_world.errors import ConfigError
from ia_world_app.cli import run_command

SAMPLED_VARIANTS = (0, 57)


@pytest.fixture(scope="module")
def oracle_solutions():
    """One solving action per sampled (template, variant), found by the oracle."""
    oracle = OracleAgent(OracleConfig(max_simulations=2000))
    solutions = {}
    for name in TEMPLATES:
        for variant in SAMPLED_VARIANTS:
            puzzle = make_puzzle(name, variant)
            action = oracle.propose(None, 1, puzzle)[0]
            solutions[puzzle.task_id] = (puzzle, action)
    return solutions


def test_at_least_ten_templates_with_hundred_variants():
    assert len(TEMPLATES) >= 10 and VARIANTS_PER_TEMPLATE >= 100
    first = make_puzzle("ledge_push", 0)
    assert make_puzzle("ledge_push", 0) == first  # seeded
    assert make_puzzle("ledge_push", 1) != first
    with pytest.raises(KeyError):
        make_puzzle("no_such_template", 0)


def test_every_template_solved_by_oracle_not_by_doing_nothing(oracle_solutions):
    for task, (puzzle, action) in oracle_solutions.items():
        space = build_space(puzzle)
        assert not attempt(space, None).solved, f"{task} is solved by doing nothing"
        outcome = attempt(space, action)
        assert outcome.valid and outcome.solved, f"oracle found no solution for {task}"


def test_solved_action_replays_identically(oracle_solutions):
    puzzle, action = oracle_solutions[f"topple_tower:{SAMPLED_VARIANTS[0]:03d}"]
    space = build_space(puzzle)
    first, second = attempt(space, action, record_size=32), attempt(space, action, record_size=32)
    assert first.solved and second.solved
    assert (first.steps, first.contact_steps) == (second.steps, second.contact_steps)
    np.testing.assert_array_equal(first.frames, second.frames)
    # recording frames changes nothing, and a fresh build gives the same outcome
    fresh = attempt(build_space(puzzle), action)
    assert (fresh.solved, fresh.steps) == (first.solved, first.steps)
    assert first.states[-1] == second.states[-1]


def test_auccess_matches_hand_computed_values():
    total = math.log(101)
    assert auccess(1) == pytest.approx(1.0)
    assert auccess(None) == 0.0 and auccess(101) == 0.0
    assert auccess(2) == pytest.approx((math.log(101) - math.log(2)) / total)
    assert auccess(100) == pytest.approx((math.log(101) - math.log(100)) / total)
    assert auccess(3, attempts=3) == pytest.approx((math.log(4) - math.log(3)) / math.log(4))
    assert mean_auccess([1, None]) == pytest.approx(0.5)
    assert success_at([1, 2, None, 1], 1) == pytest.approx(0.5)
    assert success_at([1, 2, None, 1], 2) == pytest.approx(0.75)


def test_invalid_placements_rejected_and_not_counted(oracle_solutions):
    puzzle, solving = oracle_solutions[f"jar_fill:{SAMPLED_VARIANTS[0]:03d}"]
    space = build_space(puzzle)
    green = next(b for b in puzzle.bodies if b.role == "green")
    on_green = np.array([green.position[0] / 256, green.position[1] / 256, 0.5])
    off_scene = np.array([0.01, 0.5, 1.0])
    assert placement_error(space, on_green) == "ball overlaps a body"
    assert placement_error(space, off_scene) == "ball leaves the scene"
    assert not attempt(space, on_green).valid

    class Scripted:
        def propose(self, observation, n, puzzle):
            return np.array([on_green, off_scene, solving])

    result = solve_puzzle(Scripted(), puzzle, attempts=100, size=32)
    assert (result.first_success, result.invalid_attempts, result.valid_attempts) == (1, 2, 1)

    env = gym.make("ia_world/PhyreLite-v0", size=32).unwrapped
    env.reset(options={"task": puzzle.task_id})
    _, reward, terminated, _, info = env.step(on_green)
    assert terminated and reward == 0.0 and not info["valid"] and not info["solved"]


def test_env_one_step_episode_with_frames(oracle_solutions):
    puzzle, action = oracle_solutions[f"tip_bar:{SAMPLED_VARIANTS[1]:03d}"]
    env = gym.make("ia_world/PhyreLite-v0", size=32).unwrapped
    frame, info = env.reset(options={"task": puzzle.task_id, "record": True})
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    assert {o["role"] for o in info["objects"]} >= {"green", "goal"}
    final, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated and reward == 1.0 and info["solved"] and info["valid"]
    assert info["frames"].shape == (info["steps"] // 6 + 1, 32, 32, 3)  # every 6th step
    assert not np.array_equal(info["frames"][0], info["frames"][-1])
    with pytest.raises(RuntimeError):
        env.step(action)
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)


def test_folds_are_disjoint_complete_and_deterministic():
    everything = {f"{t}:{v:03d}" for t in TEMPLATES for v in range(VARIANTS_PER_TEMPLATE)}
    for split in ("within", "cross"):
        held = []
        for fold in range(NUM_FOLDS):
            train, test = split_tasks(split, fold)
            assert (train, test) == split_tasks(split, fold)
            assert not set(train) & set(test) and set(train) | set(test) == everything
            assert len(test) == len(everything) // NUM_FOLDS
            held.extend(test)
            if split == "cross":
                templates = {t.split(":")[0] for t in test}
                assert not templates & {t.split(":")[0] for t in train}
            else:
                per_template = {t: sum(x.startswith(t + ":") for x in test) for t in TEMPLATES}
                assert set(per_template.values()) == {VARIANTS_PER_TEMPLATE // NUM_FOLDS}
        assert sorted(held) == sorted(everything)  # folds partition the tasks
    with pytest.raises(ValueError):
        split_tasks("within", NUM_FOLDS)


def test_random_agent_proposes_valid_seeded_actions():
    puzzle = make_puzzle("ball_in_cup", 3)
    agent = RandomAgent(RandomConfig(seed=1))
    actions = agent.propose(None, 20, puzzle)
    assert actions.shape == (20, 3) and np.all((actions >= 0) & (actions <= 1))
    space = build_space(puzzle)
    assert all(placement_error(space, a) is None for a in actions)
    np.testing.assert_array_equal(actions, agent.propose(None, 20, puzzle))


def test_solve_command_writes_table_json_and_videos(tmp_path):
    summary = run_command("solve", ["agent=oracle", "split=cross", "fold=1", "puzzles=1",
                                    "agent.max_simulations=2000", f"out={tmp_path}"])
    out = tmp_path / "oracle_cross_fold1"
    results = json.loads((out / "results.json").read_text())
    assert summary["overall"]["auccess"] == pytest.approx(1.0)
    assert results["summary"]["overall"]["puzzles"] == 2
    assert "| overall |" in (out / "table.md").read_text()
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == sorted(f"{r['template']}.mp4" for r in results["puzzles"])
    with pytest.raises(ConfigError):
        run_command("solve", ["split=sideways", f"out={tmp_path}"])
    with pytest.raises(ConfigError):
        run_command("solve", ["agent=nobody", f"out={tmp_path}"])
