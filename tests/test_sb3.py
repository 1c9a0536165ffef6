"""The frozen IA-JEPA encoder in RL: SB3 extractor, latent wrapper, `ia-world rl`."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file, save_file
from stable_baselines3.common.vec_env import VecTransposeImage

import envs  # noqa: F401  (registers the ids)
from agents.rl import (
    RLConfig,
    StateObservation,
    encoder_label,
    episode_returns,
    final_return,
    labelled_returns,
    make_agent,
    make_env,
    returns_table,
    trainable_state,
)
from agents.sb3 import IAJEPAExtractor, LatentObservation, stretch_to_clip
from ia_world.checkpoint import load_encoder, write_initial_checkpoint
from ia_world.errors import CheckpointError, ConfigError, DataError
from ia_world.models import ModelConfig
from ia_world_app.cli import run_command

MICRO = ModelConfig(frames=4, size=32, tubelet_t=2, patch=8, embed_dim=32, depth=1, num_heads=2,
                    pred_dim=16, pred_depth=1, pred_heads=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return str(write_initial_checkpoint(tmp_path_factory.mktemp("ckpt"), MICRO, seed=0))


def small_config(checkpoint, tmp_path, **overrides) -> RLConfig:
    cfg = RLConfig(encoder=checkpoint, size=32, n_envs=2, frame_stack=2, episode_steps=32,
                   steps=256, out=str(tmp_path), name="test", **overrides)
    cfg.ppo.n_steps, cfg.ppo.batch_size, cfg.ppo.n_epochs = 64, 32, 2
    return cfg


@pytest.mark.parametrize("pool", ["mean", "attentive"])
def test_ppo_trains_the_head_and_leaves_the_encoder_bit_identical(checkpoint, tmp_path, pool):
    cfg = small_config(checkpoint, tmp_path, pool=pool)
    agent = make_agent(cfg, make_env(cfg, tmp_path), tmp_path)
    extractor = agent.policy.features_extractor
    assert isinstance(extractor, IAJEPAExtractor)
    encoder_before = {k: v.clone() for k, v in extractor.encoder.state_dict().items()}
    head_before = {k: v.clone() for k, v in agent.policy.state_dict().items()
                   if ".encoder." not in k}
    agent.learn(total_timesteps=cfg.steps)
    assert agent.num_timesteps >= 256
    agent.policy.set_training_mode(True)
    assert not extractor.encoder.training and not extractor.encoder.encoder.training
    for key, value in extractor.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    after = agent.policy.state_dict()
    assert not torch.equal(after["action_net.weight"], head_before["action_net.weight"])
    if pool == "attentive":
        query = next(k for k in head_before if k.endswith("pool.query"))
        assert not torch.equal(after[query], head_before[query])
    save_file(trainable_state(agent.policy), tmp_path / "policy.safetensors")
    saved = load_file(tmp_path / "policy.safetensors")
    assert not any(".encoder." in key for key in saved)
    assert torch.equal(saved["action_net.weight"], after["action_net.weight"])


def test_extractor_features_are_pooled_encodings_of_the_stretched_stack(checkpoint):
    env = gym.make("ia_world/PushBall-v0", size=32).unwrapped
    frames = [env.reset(seed=0)[0]] + [env.step(env.action_space.sample())[0] for _ in range(2)]
    stack = np.stack(frames)  # K=3 H W 3, oldest first
    observation = rearrange(stack, "k h w c -> (k c) h w")[None]  # as VecTransposeImage gives
    space = gym.spaces.Box(0, 255, observation.shape[1:], np.uint8)
    extractor = IAJEPAExtractor(space, checkpoint=checkpoint)
    features = extractor(torch.from_numpy(observation).float() / 255.0)
    clip = torch.from_numpy(stack[[0, 0, 1, 2]])[None]  # T=4 from K=3: index t * K // T
    assert torch.equal(stretch_to_clip(torch.from_numpy(stack)[None], 4), clip)
    expected = load_encoder(checkpoint).encode(clip).mean(1)
    assert features.shape == (1, MICRO.embed_dim) == (1, extractor.features_dim)
    torch.testing.assert_close(features, expected)


def test_wrapper_latents_equal_encode_on_the_same_frames(checkpoint):
    raw = gym.make("ia_world/PushBall-v0", size=32).unwrapped
    wrapped = LatentObservation(gym.make("ia_world/PushBall-v0", size=32).unwrapped, checkpoint,
                                pool=False)
    actions = [np.array([1.0, -0.5], np.float32)] * 5
    frames, latents = [raw.reset(seed=2)[0]], [wrapped.reset(seed=2)[0]]
    for action in actions:
        frames.append(raw.step(action)[0])
        latents.append(wrapped.step(action)[0])
    padded = np.stack([frames[0]] * (MICRO.frames - 1) + frames)  # first frame repeated at reset
    clips = np.stack([padded[i:i + MICRO.frames] for i in range(len(frames))])
    expected = load_encoder(checkpoint).encode(torch.from_numpy(clips)).numpy()
    assert np.stack(latents).shape == (6, MICRO.grid.num_tokens, MICRO.embed_dim)
    np.testing.assert_allclose(np.stack(latents), expected, rtol=1e-5, atol=1e-6)
    cached = len(wrapped.cache)
    np.testing.assert_array_equal(wrapped.latents(clips), np.stack(latents))  # from the cache
    assert len(wrapped.cache) == cached


def test_checkpoint_with_another_frame_size_is_refused(checkpoint, tmp_path):
    env = gym.make("ia_world/PushBall-v0", size=64).unwrapped
    space = VecTransposeImage.transpose_space(
        gym.spaces.Box(0, 255, (64, 64, 6), np.uint8))
    with pytest.raises(CheckpointError, match="encodes 32x32 frames .* 64x64; render the env "
                                              "at size=32"):
        IAJEPAExtractor(space, checkpoint=checkpoint)
    with pytest.raises(CheckpointError, match="encodes 32x32 frames"):
        LatentObservation(env, checkpoint)
    with pytest.raises(CheckpointError, match="encodes 32x32 frames"):
        run_command("rl", [f"encoder={checkpoint}", "size=64", f"out={tmp_path}"])


def test_rl_command_writes_logs_weights_and_curves(checkpoint, tmp_path):
    common = ["env=ia_world/PushBall-v0", "size=32", "steps=128", "n_envs=2", "frame_stack=2",
              "episode_steps=16", "ppo.n_steps=64", "ppo.batch_size=32", "ppo.n_epochs=1",
              f"out={tmp_path}"]
    runs = [run_command("rl", [f"encoder={checkpoint}", f"seed={seed}", *common])
            for seed in (0, 1)]
    for run_dir in runs:
        info = json.loads((run_dir / "run.json").read_text())
        assert info["env_steps"] == 128 and info["seconds_per_env_step"] > 0
        assert len((run_dir / "0.monitor.csv").read_text().splitlines()) == 2 + 128 // 2 // 16
        assert (run_dir / "policy.safetensors").stat().st_size > 0
        assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    figure = run_command("rl", [f"plot=[{tmp_path}]", f"out={tmp_path}"])
    assert figure == tmp_path / "curves.png" and figure.stat().st_size > 0
    row = (tmp_path / "returns.md").read_text().splitlines()[2]
    assert row.startswith(f"| {encoder_label(str(checkpoint))} |") and row.endswith("| 2 |  |")


@pytest.mark.parametrize("env_id", ["ia_world/PushBall-v0", "ia_world/PushBall3D-v0"])
def test_state_observation_is_the_ground_truth_of_pusher_target_and_goal(env_id):
    env = StateObservation(gym.make(env_id, size=16))
    obs, info = env.reset(seed=3)
    scene = env.unwrapped
    moving = [scene.pusher_id, scene.target_id]
    assert env.observation_space.shape == obs.shape == (2 * 6 + 2,)
    for _ in range(5):
        obs, *_, info = env.step(np.array([1.0, 0.5], np.float32))
    position, velocity = (np.asarray(info["states"][k])[moving] for k in ("position", "velocity"))
    assert np.abs(velocity).max() > 0     # the pusher moves, and the observation follows it
    np.testing.assert_allclose(obs, np.concatenate([position.ravel(), velocity.ravel(),
                                                    scene.goal]).astype(np.float32))


def test_rl_on_the_state_keeps_its_normalisation_with_the_policy(tmp_path):
    run_dir = run_command("rl", ["env=ia_world/PushBall-v0", "encoder=state", "size=16",
                                 "steps=128", "n_envs=2", "episode_steps=16", "ppo.n_steps=64",
                                 "ppo.batch_size=32", "ppo.n_epochs=1", f"out={tmp_path}"])
    weights = load_file(run_dir / "policy.safetensors")
    assert weights["observation_mean"].shape == (14,) and weights["observation_var"].min() > 0
    assert json.loads((run_dir / "run.json").read_text())["label"] == "state"
    with pytest.raises(ConfigError, match="'cnn', 'state' or a checkpoint"):
        run_command("rl", ["encoder=pixels", f"out={tmp_path}"])


def fake_run(path: Path, label: str, seed: int, returns: list[float]) -> Path:
    """A run directory with run.json and an SB3 monitor file of 50-step episodes."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"label": label, "config": {"seed": seed}}))
    rows = "".join(f"{r},50,{t}\n" for t, r in enumerate(returns))
    (path / "0.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n' + rows)
    return path


def test_returns_table_pairs_the_final_returns_by_seed(tmp_path):
    # final return = mean of the episodes ending in the last quarter of env steps (here the
    # last of 4 episodes: steps 200 > 150); b - a is +2 in both seeds, so its interval is [2, 2]
    runs = [fake_run(tmp_path / "a0", "a", 0, [0, 0, 0, 1]),
            fake_run(tmp_path / "a1", "a", 1, [0, 0, 0, 3]),
            fake_run(tmp_path / "b0", "b", 0, [9, 9, 9, 3]),
            fake_run(tmp_path / "b1", "b", 1, [9, 9, 9, 5])]
    assert final_return(*episode_returns(runs[1])) == 3.0
    lines = returns_table(labelled_returns(runs)).splitlines()
    assert lines[2].startswith("| a | +2.00 [") and lines[2].endswith("| 2 |  |")
    assert lines[3] == "| b | +4.00 [-8.71, +16.71] | 2 | +2.00 [+2.00, +2.00] (n=2) |"
    fake_run(tmp_path / "b1again", "b", 1, [0])
    with pytest.raises(DataError, match="a second b run of seed 1"):
        labelled_returns([*runs, tmp_path / "b1again"])


def test_cached_and_windowed_extractor_features(checkpoint):
    env = gym.make("ia_world/PushBall-v0", size=32).unwrapped
    stacks = np.stack([np.stack([env.reset(seed=s)[0]] * 2) for s in range(3)])  # B K H W 3
    observations = torch.from_numpy(rearrange(stacks, "b k h w c -> b (k c) h w")).float() / 255
    space = gym.spaces.Box(0, 255, observations.shape[1:], np.uint8)
    fresh = IAJEPAExtractor(space, checkpoint=checkpoint, cache_size=0)
    cached = IAJEPAExtractor(space, checkpoint=checkpoint, cache_size=2)
    calls = []
    encode = cached.encoder.encode
    cached.encoder.encode = lambda clips, keep=None: calls.append(len(clips)) or encode(clips, keep)
    first = cached(observations[[0, 1, 0]])  # one call, the repeated stack encoded once
    assert calls == [2] and len(cached.cache) == 2
    torch.testing.assert_close(first, fresh(observations[[0, 1, 0]]))
    torch.testing.assert_close(cached(observations[[1, 2]]), fresh(observations[[1, 2]]))
    assert calls == [2, 1] and len(cached.cache) == 2  # stack 0 left the LRU cache
    assert not cached(observations[:1]).requires_grad and not first.is_inference()
    # window=1: only the last token time step's tokens (of T'=2), the same as `keep` gives
    window = IAJEPAExtractor(space, checkpoint=checkpoint, window=1, cache_size=0)
    clips = stretch_to_clip(torch.from_numpy(stacks), MICRO.frames)
    tokens = MICRO.grid.num_tokens // 2
    expected = load_encoder(checkpoint).encoder(clips)[:, tokens:]  # not what keep computes
    keep = torch.arange(tokens, 2 * tokens).expand(3, -1)
    kept = load_encoder(checkpoint).encode(clips, keep)
    torch.testing.assert_close(window(observations), kept.mean(1))
    assert not torch.allclose(kept, expected)  # the window's tokens attend only to each other
    with pytest.raises(ConfigError, match="window=3"):
        IAJEPAExtractor(space, checkpoint=checkpoint, window=3)
