"""The collision probe: its split's clips, determinism, physics of its ceilings, the probe."""

import numpy as np
import pytest

from ia_world.errors import ConfigError
from ia_world.eval.collision_probe import (
    COLLISION_SUBJECTS,
    COLLISION_TARGETS,
    CollisionProbeConfig,
    ball_property,
    ceiling_features,
    collision_probe,
    collision_split,
    collision_splits,
    collision_targets,
    contact_normal,
    density_blind_features,
    impulse_terms,
    pre_collision_clips,
    split_seeds,
    velocities,
)
from ia_world.eval.features import dynamic_indices
from ia_world.eval.probe import fit_probe

FRAMES, SIZE, MARGIN = 16, 32, 4


@pytest.fixture(scope="module")
def clips():
    """A small rendered split (16 frames, 32 px)."""
    return collision_split(12, 5, FRAMES, SIZE, MARGIN)


def test_every_clip_has_two_balls_and_one_ball_collision_inside_the_margins(clips):
    for clip in clips:
        ep = clip.episode
        balls = dynamic_indices(ep)
        assert len(balls) == 2 and sorted(clip.balls) == balls
        ball_ids = sorted(ep.objects[i]["id"] for i in balls)
        assert [sorted(c["object_ids"]) for c in ep.collisions] == [ball_ids]  # no wall contact
        assert ep.collisions[0]["frame"] == clip.frame
        assert MARGIN <= clip.frame <= FRAMES - MARGIN
        assert ep.frames.shape == (FRAMES, SIZE, SIZE, 3)
        velocity = ep.states["velocity"][:, clip.balls, :2]
        pre, post = velocities(clip)
        # constant velocity on each side of the collision, and a real change across it
        assert np.allclose(velocity[:clip.frame], pre, atol=1e-6)
        assert np.allclose(velocity[clip.frame:], post, atol=1e-6)
        assert np.linalg.norm(post - pre, axis=-1).min() > 1e-3
        # balls ordered left to right in the first frame
        x = ep.states["position"][0, clip.balls, 0]
        assert x[0] <= x[1]


def test_split_is_deterministic_and_base_seeds_disjoint(clips):
    again = collision_split(12, 5, FRAMES, SIZE, MARGIN)
    assert [c.episode.meta["seed"] for c in again] == [c.episode.meta["seed"] for c in clips]
    assert all(np.array_equal(a.episode.frames, b.episode.frames) for a, b in zip(again, clips))
    other = collision_split(12, 6, FRAMES, SIZE, MARGIN, render=False)
    assert not split_seeds(other) & split_seeds(clips)


def test_margin_beyond_half_the_clip_is_a_config_error():
    with pytest.raises(ConfigError, match="margin"):
        collision_splits(CollisionProbeConfig(margin=5), 9302, frames=8, size=32)


def test_elastic_impulse_with_true_masses_gives_the_post_collision_velocities(clips):
    for clip in clips:
        pre, post = velocities(clip)
        predicted = pre.ravel() + impulse_terms(pre, contact_normal(clip),
                                                ball_property(clip, "mass"))
        assert np.allclose(predicted, post.ravel(), atol=1e-9 * np.abs(pre).max())


def test_pre_collision_clips_freeze_from_the_collision_frame(clips):
    frozen = pre_collision_clips(clips, FRAMES)
    for video, clip in zip(frozen, clips):
        assert np.array_equal(video[:clip.frame], clip.episode.frames[:clip.frame])
        assert (video[clip.frame:] == clip.episode.frames[clip.frame - 1]).all()


def test_ground_truth_ceiling_reads_the_mass_ratio_and_density_blind_cannot():
    train = collision_split(160, 11, FRAMES, SIZE, MARGIN, render=False)
    heldout = collision_split(80, 12, FRAMES, SIZE, MARGIN, render=False)
    train_y, heldout_y = collision_targets(train), collision_targets(heldout)
    ceiling = fit_probe(ceiling_features(train)["mass_ratio"], train_y["mass_ratio"],
                        ceiling_features(heldout)["mass_ratio"], heldout_y["mass_ratio"])
    blind = fit_probe(density_blind_features(train), train_y["mass_ratio"],
                      density_blind_features(heldout), heldout_y["mass_ratio"])
    assert ceiling["r2"] >= 0.95
    assert blind["r2"] <= 0.3


def test_collision_probe_fits_every_subject_on_every_target(tmp_path):
    from ia_world.checkpoint import initial_encoder, load_encoder, write_initial_checkpoint
    from ia_world.models import ModelConfig

    model = ModelConfig(frames=8, size=32, embed_dim=32, depth=1, num_heads=2, pred_dim=16,
                        pred_depth=1, pred_heads=2)
    write_initial_checkpoint(tmp_path / "run", model, seed=0)
    encoders = {"encoder": load_encoder(tmp_path / "run"),
                "floor": initial_encoder(tmp_path / "run")}
    cfg = CollisionProbeConfig(train_episodes=8, heldout_episodes=6)  # margin 8 // 4 = 2
    splits = collision_splits(cfg, 9302, model.frames, model.size)
    result = collision_probe(encoders, splits, batch_size=4)
    assert set(result) == set(COLLISION_TARGETS)
    for target, subjects in result.items():
        assert set(subjects) == set(COLLISION_SUBJECTS)
        width = 4 if target == "post_velocity" else None
        for fit in subjects.values():
            assert np.isfinite(fit["r2"]) and len(fit["predicted"]) == 6
            assert width is None or np.shape(fit["predicted"]) == (6, width)
