"""Active pushing tasks: Gymnasium compliance, forces that move the pusher, reward shaping."""

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.pushball import PushBall, PushBall3D

ACTIVE_IDS = ["ia_world/PushBall-v0", "ia_world/PushBallSparse-v0", "ia_world/PushBall3D-v0"]


@pytest.mark.parametrize("env_id", ACTIVE_IDS)
def test_check_env_passes(env_id):
    env = gym.make(env_id, size=32, max_steps=8).unwrapped
    check_env(env, skip_render_check=False)
    env.close()


def place_pymunk(env: PushBall, object_id: int, point) -> None:
    env.body_of(object_id).position = tuple(point)


def place_bullet(env: PushBall3D, object_id: int, point) -> None:
    p.resetBasePositionAndOrientation(env._body(object_id), [*point, 0.2], [0, 0, 0, 1],
                                      physicsClientId=env._client)


@pytest.mark.parametrize("make, place", [(PushBall, place_pymunk), (PushBall3D, place_bullet)])
def test_shaped_reward_rises_as_target_nears_goal_and_sparse_pays_only_success(make, place):
    shaped, sparse = make(size=32), make(size=32, reward="sparse")
    offset = 2.5 * shaped.goal_radius
    for env in (shaped, sparse):
        env.reset(seed=5)
        place(env, env.pusher_id, env.goal + np.array([0.0, offset]))  # straight above the goal
    shares = np.linspace(1.0, 0.0, 8)  # target from `offset` right of the goal to its centre
    shaped_rewards, sparse_rewards, done = [], [], []
    for share in shares:
        for env in (shaped, sparse):
            place(env, env.target_id, env.goal + np.array([share * offset, 0.0]))
        shaped_rewards.append(shaped._reward())
        sparse_rewards.append(sparse._reward())
        done.append(sparse._terminated())
    inside = [share * offset < shaped.goal_radius for share in shares]
    assert np.all(np.diff(shaped_rewards) > 0)
    assert sparse_rewards == [float(x) for x in inside]
    assert done == inside and any(inside) and not all(inside)
    shaped.close()
    sparse.close()


def test_force_moves_the_pusher_the_way_it_points():
    pushed, idle = PushBall(size=32), PushBall(size=32)
    pushed.reset(seed=1)
    idle.reset(seed=1)
    for _ in range(4):
        pushed.step(np.array([1.0, 0.0], np.float32))
        idle.step(np.array([0.0, 0.0], np.float32))
    moved = pushed.body_of(pushed.pusher_id).position.x - idle.body_of(idle.pusher_id).position.x
    assert moved > 0.1


def test_bad_reward_kind_is_refused():
    with pytest.raises(ValueError, match="reward must be one of"):
        PushBall(reward="dense")


@pytest.mark.parametrize("env_id", ["ia_world/PushBall-v0", "ia_world/PushBall3D-v0"])
@pytest.mark.parametrize("bad", [[np.nan, 0.0], [0.0, np.inf], [-np.inf, np.nan]])
def test_non_finite_action_is_refused_and_the_env_stays_usable(env_id, bad):
    env = gym.make(env_id, size=32).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array(bad, np.float32))
    for _ in range(3):
        frame, reward, *_ = env.step(np.array([0.5, -0.5], np.float32))
        assert np.isfinite(reward) and frame.shape == (32, 32, 3)
    env.close()
