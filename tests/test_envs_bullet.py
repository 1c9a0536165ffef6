"""PyBullet scenes: Gymnasium compliance, determinism, energy, collisions, camera projection."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ia_world/ envs)
from envs.base import STATE_KEYS
from envs.bullet_backend import BulletScene
from envs.bullet_scenes import Drop3D, Tabletop3D
from ia_world.data.episode import simulate_episode

BULLET_IDS = ["ia_world/Tabletop3D-v0", "ia_world/Drop3D-v0"]


class OneBody(BulletScene):
    """Floor plus one object built by `build(scene)`: a fixture for hand-checked physics."""

    def __init__(self, build, **kwargs):
        super().__init__(**kwargs)
        self.build = build

    def _populate(self, rng, options):
        self.add_floor()
        self.build(self)


def assert_episodes_equal(a, b):
    np.testing.assert_array_equal(a.frames, b.frames)
    for key in STATE_KEYS:
        np.testing.assert_array_equal(a.states[key], b.states[key])
    for key in a.energy:
        np.testing.assert_array_equal(a.energy[key], b.energy[key])
    assert a.collisions == b.collisions and a.objects == b.objects


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")
@pytest.mark.parametrize("env_id", BULLET_IDS)
def test_check_env_passes_unwrapped_and_made(env_id):
    made = gym.make(env_id, size=32, max_steps=4)
    check_env(made.unwrapped, skip_render_check=False)
    check_env(made, skip_render_check=False)
    made.close()


@pytest.mark.parametrize("env_id", BULLET_IDS)
def test_same_seed_is_bit_identical_and_seeds_differ(env_id):
    first, second = gym.make(env_id, size=32).unwrapped, gym.make(env_id, size=32).unwrapped
    run_a = simulate_episode(first, seed=3, num_frames=12)
    run_b = simulate_episode(second, seed=3, num_frames=12)
    assert_episodes_equal(run_a, run_b)
    run_c = simulate_episode(first, seed=4, num_frames=12)
    assert not np.array_equal(run_a.frames, run_c.frames)
    assert_episodes_equal(run_a, simulate_episode(first, seed=3, num_frames=12))  # same client
    assert run_a.frames.dtype == np.uint8 and run_a.frames.shape == (12, 32, 32, 3)
    first.close()
    second.close()


def test_render_returns_fresh_arrays_at_128():
    env = Tabletop3D(size=128)
    frame, _ = env.reset(seed=0)
    again = env.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert again is not frame and np.array_equal(again, frame)
    env.close()


def test_drop3d_turns_potential_into_kinetic_without_gaining_energy():
    env = Drop3D(size=32)
    for seed in range(3):
        episode = simulate_episode(env, seed=seed, num_frames=48)
        energy = episode.energy
        assert energy["translational"][0] == 0.0  # dropped from rest (spinning)
        first_hit = min(c["frame"] for c in episode.collisions)
        assert first_hit > 3
        # free fall: kinetic energy rises by what potential loses, less the semi-implicit Euler
        # integrator's loss of 1/2 m g^2 dt^2 per substep (about 2% here), never more
        drop = energy["potential"][0] - energy["potential"][first_hit - 1]
        gain = energy["kinetic"][first_hit - 1] - energy["kinetic"][0]
        assert drop > 0.5 and 0.96 * drop <= gain <= drop
        # impacts only dissipate: the total never rises beyond 0.5% of the start
        assert energy["total"].max() <= energy["total"][0] * 1.005
        assert energy["total"][-1] < 0.9 * energy["total"][0]
    env.close()


def test_tabletop3d_is_collision_rich():
    env = Tabletop3D(size=32)
    with_collision = 0
    for seed in range(10):
        episode = simulate_episode(env, seed=seed, num_frames=32)
        dynamic = {o["id"] for o in episode.objects if not o["static"]}
        with_collision += any(set(c["object_ids"]) <= dynamic for c in episode.collisions)
    assert with_collision >= 7
    env.close()


@pytest.mark.parametrize("scene", [Tabletop3D, Drop3D])
def test_collision_pixels_lie_on_both_objects_bboxes(scene):
    env = scene(size=64)
    checked = 0
    for seed in range(2):
        episode = simulate_episode(env, seed=seed, num_frames=32)
        index = {o["id"]: i for i, o in enumerate(episode.objects)}
        for collision in episode.collisions:
            column, row = collision["pixel"]
            for object_id in collision["object_ids"]:
                left, top, right, bottom = episode.states["bbox"][collision["frame"],
                                                                   index[object_id]]
                assert left - 2 <= column <= right + 2 and top - 2 <= row <= bottom + 2
            checked += 1
    assert checked > 0
    env.close()


def test_projection_matches_the_rendered_object():
    def build(scene):
        scene.add_sphere((0.6, 0.3, 0.4), (0, 0, 0), 0.4, 1.0, "red")

    env = OneBody(build, size=64, shadow=False)
    frame, info = env.reset(seed=0)
    red = (frame[..., 0].astype(int) - frame[..., 1] > 60)  # (H, W) pixels of the red sphere
    rows, columns = np.nonzero(red)
    left, top, right, bottom = info["states"]["bbox"][1]
    assert red.sum() > 20
    assert left - 1 <= columns.min() and columns.max() <= right + 1
    assert top - 1 <= rows.min() and rows.max() <= bottom + 1
    column, row = info["states"]["pixel"][1]
    assert red[int(row), int(column)]
    env.close()


def test_resting_contact_is_no_collision_but_a_drop_is_one():
    def resting(scene):
        scene.add_cube((0, 0, 0.25), (0, 0, 0), 0.5, 1.0, "blue")

    def dropped(scene):
        scene.add_cube((0, 0, 1.0), (0, 0, 0), 0.5, 1.0, "blue")

    env = OneBody(resting, size=16)
    episode = simulate_episode(env, seed=0, num_frames=40)
    assert episode.collisions == []
    env.build = dropped
    episode = simulate_episode(env, seed=0, num_frames=40)
    assert 1 <= len(episode.collisions) <= 6
    first = episode.collisions[0]
    assert first["object_ids"] == [0, 1] and first["impulse"] > 0
    assert abs(first["position"][2]) < 0.05  # on the floor's top face
    env.close()


def test_rotational_energy_of_spinning_bodies_matches_hand_computation():
    mass, side, radius, height = 2.0, 0.4, 0.3, 0.8
    spin = np.array([1.0, -2.0, 3.0])
    tilt = (0.7, -0.4, 1.1)

    def build(scene):
        scene.add_cube((0, 0, 2.0), (0, 0, 0), side, mass, "green", orientation=tilt,
                       angular_velocity=spin)
        scene.add_cylinder((2, 0, 2.0), (0, 0, 0), radius, height, mass, "cyan",
                           orientation=tilt, angular_velocity=spin)

    env = OneBody(build, size=16, gravity=0.0)
    _, info = env.reset(seed=0)
    cube = 0.5 * mass * side**2 / 6 * spin @ spin  # a cube's inertia is isotropic
    rotation = rotation_from_euler(tilt)
    local = rotation.T @ spin  # angular velocity in the cylinder's body axes
    inertia = np.array([mass * (3 * radius**2 + height**2) / 12] * 2 + [mass * radius**2 / 2])
    cylinder = 0.5 * inertia @ local**2
    assert info["energy"]["rotational"] == pytest.approx(cube + cylinder, rel=1e-9)
    assert info["energy"]["translational"] == 0.0
    env.close()


def rotation_from_euler(euler) -> np.ndarray:
    """Body-to-world rotation of PyBullet's euler angles: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    roll, pitch, yaw = euler
    cx, sx, cy, sy, cz, sz = (np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch),
                              np.cos(yaw), np.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize("scene", [Tabletop3D, Drop3D])
def test_exclude_ids_removes_exactly_that_object(scene):
    env = scene(size=16)
    _, full = env.reset(seed=5)
    _, without = env.reset(seed=5, options={"exclude_ids": [2]})
    assert [o["id"] for o in without["objects"]] == [o["id"] for o in full["objects"] if
                                                      o["id"] != 2]
    kept = [i for i, o in enumerate(full["objects"]) if o["id"] != 2]
    assert without["objects"] == [full["objects"][i] for i in kept]
    np.testing.assert_array_equal(without["states"]["position"],
                                  full["states"]["position"][kept])
    env.close()


def test_close_is_safe_twice_and_before_reset():
    env = Drop3D(size=16)
    env.close()
    env.reset(seed=0)
    env.close()
    env.close()
    env.reset(seed=1)  # a closed env can be reset again
    env.step(0)
    env.close()


def test_objects_store_full_dimensions_and_inertia():
    mass, side, radius, height = 2.0, 0.4, 0.3, 0.8

    def build(scene):
        scene.add_cube((0, 0, 2.0), (0, 0, 0), side, mass, "green")
        scene.add_cylinder((2, 0, 2.0), (0, 0, 0), radius, height, mass, "cyan")

    _, info = OneBody(build, size=16, gravity=0.0).reset(seed=0)
    cube, cylinder = info["objects"][-2:]  # after the floor
    assert cube["side"] == side and cube["inertia"] == pytest.approx([mass * side**2 / 6] * 3)
    assert (cylinder["radius"], cylinder["height"]) == (radius, height)
    across = mass * (3 * radius**2 + height**2) / 12
    assert cylinder["inertia"] == pytest.approx([across, across, mass * radius**2 / 2])
