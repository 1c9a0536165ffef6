"""Pymunk (2D) scenes: Gymnasium compliance, determinism, ground truth and physics sanity."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ia_world/ envs)
from envs.pymunk_scenes import Billiards, Cradle, Gravity2D
from envs.raster import PALETTE
from ia_world.data.episode import make_env, simulate_episode

PYMUNK_IDS = ["ia_world/Billiards-v0", "ia_world/BilliardsInelastic-v0",
              "ia_world/Gravity2D-v0", "ia_world/Cradle-v0"]


def make(env_id: str, **kwargs):
    """The unwrapped env at 64x64 (the generator's view)."""
    return gym.make(env_id, size=64, **kwargs).unwrapped


def dynamic_ids(episode) -> list[int]:
    """Ids of the episode's movable objects."""
    return [o["id"] for o in episode.objects if not o["static"]]


def column(episode, object_id: int) -> int:
    """Index of an object id in the episode's per-object state arrays."""
    return [o["id"] for o in episode.objects].index(object_id)


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_check_env_passes_unwrapped_and_made(env_id):
    check_env(make(env_id), skip_render_check=False)
    with pytest.warns(UserWarning, match="different from the unwrapped"):
        check_env(gym.make(env_id, size=64), skip_render_check=False)


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_same_seed_same_episode_and_different_seeds_differ(env_id):
    first = simulate_episode(make(env_id), seed=3, num_frames=24)
    again = simulate_episode(make(env_id), seed=3, num_frames=24)
    other = simulate_episode(make(env_id), seed=4, num_frames=24)
    np.testing.assert_array_equal(first.frames, again.frames)
    for key in first.states:
        np.testing.assert_array_equal(first.states[key], again.states[key])
    for key in first.energy:
        np.testing.assert_array_equal(first.energy[key], again.energy[key])
    assert first.collisions == again.collisions and first.objects == again.objects
    assert not np.array_equal(first.frames, other.frames)


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_collision_rich_most_seeds_collide_within_32_frames(env_id):
    env = make(env_id)
    collided = [len(simulate_episode(env, seed, 32).collisions) > 0 for seed in range(20)]
    assert np.mean(collided) >= 0.8, collided


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_collision_pixels_lie_on_the_two_bodies(env_id):
    """The contact happens between frames f-1 and f: the pixel is within 2 px of both bboxes."""
    env, checked = make(env_id), 0
    for seed in range(3):
        episode = simulate_episode(env, seed, 48)
        for event in episode.collisions:
            pixel, frame = np.array(event["pixel"]), event["frame"]
            assert np.all(pixel > -2) and np.all(pixel < 64 + 2)
            for object_id in event["object_ids"]:
                boxes = episode.states["bbox"][frame - 1:frame + 1, column(episode, object_id)]
                low, high = boxes[:, :2].min(0), boxes[:, 2:].max(0)
                distance = np.hypot(*np.maximum(0.0, np.maximum(low - pixel, pixel - high)))
                assert distance <= 2.0, (seed, event, distance)
            checked += 1
    assert checked > 0


def test_balls_are_drawn_in_their_colour_at_their_pixel():
    episode = simulate_episode(make("ia_world/Billiards-v0"), seed=0, num_frames=1)
    for object_id in dynamic_ids(episode):
        col, row = episode.states["pixel"][0, column(episode, object_id)].astype(int)
        color = PALETTE[episode.objects[column(episode, object_id)]["color"]]
        np.testing.assert_allclose(episode.frames[0, row, col], color, atol=1)


def test_elastic_billiards_conserves_energy_through_collisions():
    """Tolerance: |E(t) - E(0)| <= 1e-6 E(0) over 64 frames (measured: ~1e-15)."""
    env = make("ia_world/Billiards-v0")
    for seed in range(3):
        episode = simulate_episode(env, seed, 64)
        total = episode.energy["total"]
        assert len(episode.collisions) >= 3
        assert np.abs(total - total[0]).max() <= 1e-6 * total[0]


def test_inelastic_billiards_loses_energy_exactly_at_collisions():
    """Between collisions |dE| <= 1e-9 E(0); every frame with a collision loses > 1e-6 E(0)."""
    env = make("ia_world/BilliardsInelastic-v0")
    for seed in range(3):
        episode = simulate_episode(env, seed, 64)
        change = np.diff(episode.energy["total"]) / episode.energy["total"][0]  # frame f -> f+1
        collision_frames = np.zeros(len(change), bool)
        collision_frames[[e["frame"] - 1 for e in episode.collisions]] = True
        assert collision_frames.sum() >= 3
        assert np.abs(change[~collision_frames]).max() <= 1e-9
        assert change[collision_frames].max() < -1e-6


def test_gravity2d_turns_potential_into_kinetic_energy():
    """Free fall: kinetic rises as potential falls, and the total moves only by Pymunk's
    semi-implicit Euler drift (+1/2 m g^2 dt^2 per substep, exactly); contacts never add energy
    beyond 1e-3 E(0) per frame, and the episode ends with less energy than it started with."""
    env = make("ia_world/Gravity2D-v0", stack_chance=0.0)
    free_falls = 0
    for seed in range(6):
        episode = simulate_episode(env, seed, 64)
        energy, total = episode.energy, episode.energy["total"]
        first_contact = min(e["frame"] for e in episode.collisions)
        assert np.diff(total).max() <= 1e-3 * total[0]
        assert total[-1] < total[0] and energy["potential"][-1] < energy["potential"][0]
        if first_contact >= 5:
            mass = sum(o["mass"] for o in episode.objects)
            drift = env.frame_skip * 0.5 * mass * (env.gravity * env.physics_dt) ** 2
            np.testing.assert_allclose(np.diff(total[:first_contact]), drift, rtol=1e-6)
            assert np.all(np.diff(energy["potential"][:first_contact]) < 0)
            assert energy["kinetic"][first_contact - 1] > energy["kinetic"][0]
            free_falls += 1
    assert free_falls >= 3


def test_cradle_striker_moves_the_far_end_of_the_row():
    env = make("ia_world/Cradle-v0")
    for seed in range(4):
        episode = simulate_episode(env, seed, 64)
        balls = dynamic_ids(episode)
        y0 = {b: episode.states["position"][0, column(episode, b), 1] for b in balls}
        striker = max(balls, key=y0.get)  # the only raised ball
        x0 = {b: episode.states["position"][0, column(episode, b), 0] for b in balls}
        far = max(balls, key=lambda b: abs(x0[b] - x0[striker]))
        hits = [e["frame"] for e in episode.collisions if striker in e["object_ids"]]
        assert hits, "the striker never hit the row"
        far_x = episode.states["pixel"][:, column(episode, far), 0]
        away = np.sign(x0[far] - x0[striker])
        assert np.abs(far_x[:hits[0]] - far_x[0]).max() < 0.05  # at rest until the hit
        assert (away * (far_x[hits[0]:] - far_x[0])).max() > 1.0  # then swings away (pixels)
        total = episode.energy["total"]
        assert np.abs(total - total[0]).max() <= 1e-3 * total[0]


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_exclude_ids_removes_one_object_and_keeps_the_rest(env_id):
    env = gym.make(env_id, size=64)
    _, full = env.reset(seed=5)
    excluded = [o["id"] for o in full["objects"] if not o["static"]][1]
    frame, counterfactual = env.reset(seed=5, options={"exclude_ids": [excluded]})
    full_ids = [o["id"] for o in full["objects"]]
    kept_ids = [o["id"] for o in counterfactual["objects"]]
    assert kept_ids == [i for i in full_ids if i != excluded]
    assert [o for o in full["objects"] if o["id"] != excluded] == counterfactual["objects"]
    rows = [full_ids.index(i) for i in kept_ids]
    for key, values in counterfactual["states"].items():
        np.testing.assert_array_equal(values, full["states"][key][rows])
    assert not np.array_equal(frame, env.reset(seed=5)[0])
    env.close()


class PushedBilliards(Billiards):
    """The active-variant hook: a force on the first ball, chosen by the agent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _apply_action(self, action) -> None:
        first_ball = next(o["id"] for o in self.objects if not o["static"])
        self.apply_force(first_ball, 10.0 * np.asarray(action))


@pytest.mark.filterwarnings("ignore:.*not having a spec")
def test_an_active_subclass_pushes_a_ball_with_a_few_lines():
    env = PushedBilliards(num_balls=(1, 1), speed=(0.0, 0.0))
    check_env(env, skip_render_check=False)
    _, info = env.reset(seed=0)
    ball = info["objects"][-1]  # after the four walls
    assert not ball["static"]
    _, _, _, _, info = env.step(np.array([1.0, -0.5], np.float32))
    velocity = info["states"]["velocity"][-1]
    expected = np.array([10.0, -5.0]) / ball["mass"] * env.physics_dt * env.frame_skip
    np.testing.assert_allclose(velocity[:2], expected, rtol=1e-6)
    _, _, _, _, info = env.step(np.zeros(2, np.float32))  # the force lasts one frame only
    np.testing.assert_allclose(info["states"]["velocity"][-1, :2], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="no dynamic object with id 0"):
        env.apply_force(0, (1.0, 0.0))  # id 0 is a wall


@pytest.mark.parametrize("env_id", PYMUNK_IDS)
def test_double_close_is_safe(env_id):
    env = gym.make(env_id, size=64)
    env.reset(seed=0)
    env.close()
    env.close()


@pytest.mark.parametrize("scene, kwargs, message", [
    (Billiards, {"size": 3}, "size must be in"),
    (Gravity2D, {"size": 3}, "size must be in"),
    (Cradle, {"size": 3}, "size must be in"),
    (Billiards, {"num_balls": (5, 2)}, "num_balls must be"),
    (Gravity2D, {"num_ramps": (0, 3)}, "num_ramps must be"),
    (Gravity2D, {"stack_chance": 1.5}, "stack_chance must be"),
    (Cradle, {"num_balls": (1, 4)}, "num_balls must be"),
    (Cradle, {"mass_spread": 0.9}, "mass_spread must be"),
])
def test_bad_kwargs_raise_a_clear_value_error(scene, kwargs, message):
    with pytest.raises(ValueError, match=message):
        scene(**kwargs)


@pytest.mark.parametrize("env_id", [*PYMUNK_IDS, "ia_world/Drop3D-v0"])
def test_rollout_reports_bit_for_bit_what_step_reports_frame_by_frame(env_id):
    env = make(env_id)
    frame, info = env.reset(seed=5)
    frames, infos = [frame], [info]
    for _ in range(19):
        frame, _, _, _, info = env.step(0)
        frames.append(frame)
        infos.append(info)
    env.reset(seed=5)
    rolled_frames, states, energy, collisions = env.rollout(20)
    np.testing.assert_array_equal(rolled_frames, np.stack(frames))
    for key, values in states.items():
        np.testing.assert_array_equal(values, np.stack([i["states"][key] for i in infos]))
    for key, values in energy.items():
        np.testing.assert_array_equal(values, [i["energy"][key] for i in infos])
    assert collisions == [event for i in infos for event in i["collisions"]]
    assert len(collisions) > 0 or env_id == "ia_world/Drop3D-v0"
    env.reset(seed=5)
    no_frames, unrendered_states, unrendered_energy, unrendered_collisions = env.rollout(
        20, render=False)  # ground truth only: the same physics, nothing drawn on the way
    assert no_frames is None and unrendered_collisions == collisions
    for key, values in states.items():
        np.testing.assert_array_equal(unrendered_states[key], values)
    for key, values in energy.items():
        np.testing.assert_array_equal(unrendered_energy[key], values)
    np.testing.assert_array_equal(env.render(), frames[-1])
    with pytest.raises(RuntimeError, match="reset"):
        make(env_id).rollout(3)


@pytest.mark.parametrize("exclude_ids, message", [([9999], "not object ids of this scene"),
                                                  ([-1], "integers >= 0"),
                                                  ([0.5], "integers >= 0"),
                                                  ([True], "integers >= 0"),
                                                  (3, "a list of object ids")])
def test_bad_exclude_ids_raise_a_clear_value_error(exclude_ids, message):
    env = make_env("ia_world/Billiards-v0", size=32)
    with pytest.raises(ValueError, match=message):
        env.reset(seed=0, options={"exclude_ids": exclude_ids})


def test_rotational_energy_recomputes_from_the_stored_dimensions(tmp_path):
    from ia_world.data.generator import EnvConfig, GenerateConfig, generate
    from ia_world.data.shards import EpisodeStore

    generate(GenerateConfig(env=EnvConfig("gravity2d", "ia_world/Gravity2D-v0"),
                            out=str(tmp_path), episodes=2, frames=24, size=32))
    for episode in EpisodeStore(tmp_path):
        boxes = [obj for obj in episode.objects if obj["shape"] == "cube"]
        assert boxes and all(obj["inertia"] == pytest.approx(
            obj["mass"] * (obj["width"] ** 2 + obj["height"] ** 2) / 12) for obj in boxes)
        inertia = np.array([0.0 if obj["static"] else obj["inertia"] for obj in episode.objects])
        spin = episode.states["angular_velocity"][..., 2]  # (T, K)
        assert 0.5 * (inertia * spin**2).sum(1) == pytest.approx(
            episode.energy["rotational"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("env_id", ["ia_world/Gravity2D-v0", "ia_world/Drop3D-v0"])
def test_each_contact_pair_is_listed_once_per_frame(env_id):
    env = make_env(env_id, size=32)
    for seed in range(4):
        events = simulate_episode(env, seed, 32).collisions
        keys = [(e["frame"], tuple(sorted(e["object_ids"]))) for e in events]
        assert events and len(keys) == len(set(keys))
