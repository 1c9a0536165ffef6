"""Wall clock per RL environment step: frozen IA-JEPA extractor views vs NatureCNN, side by side.

    python benchmarks/bench_rl.py [--n-envs 1 8] [--steps-per-env 128] [--model tiny]

PPO (SB3, n_steps=64 per env, batch 64, 4 epochs) on PushBall-v0 64 px, 4 stacked frames, for
`--steps-per-env` steps per env, once per extractor, all in one run on the same machine:
NatureCNN trained from scratch; the frozen encoder (an initialised `--model` checkpoint; its cost
does not depend on training) as before this benchmark existed (cache_size=0: every PPO epoch
encodes again), with the latent cache (the default), and with the cache and window=1 (only the
current step's tokens). Prints ms per env step and the ratio to NatureCNN.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

import envs  # noqa: F401  (registers the ids)
from agents.sb3 import IAJEPAExtractor
from ia_world.checkpoint import write_initial_checkpoint


def ms_per_env_step(n_envs: int, steps_per_env: int, extractor: dict | None) -> float:
    """Wall-clock ms per env step of PPO.learn (rollouts and updates)."""
    venv = VecFrameStack(make_vec_env("ia_world/PushBall-v0", n_envs=n_envs, seed=0,
                                      env_kwargs={"size": 64, "max_steps": 128},
                                      vec_env_cls=DummyVecEnv), 4, channels_order="last")
    policy_kwargs = {} if extractor is None else dict(
        features_extractor_class=IAJEPAExtractor, features_extractor_kwargs=extractor)
    agent = PPO("CnnPolicy", venv, n_steps=64, batch_size=64, n_epochs=4, seed=0, device="cpu",
                policy_kwargs=policy_kwargs, verbose=0)
    start = time.perf_counter()
    agent.learn(total_timesteps=steps_per_env * n_envs)
    seconds = time.perf_counter() - start
    venv.close()
    return 1000 * seconds / agent.num_timesteps


def main() -> None:
    """Print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps-per-env", type=int, default=128)
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(write_initial_checkpoint(Path(tmp) / "ckpt", args.model, seed=0))
        views = {"NatureCNN (trained)": None,
                 "IA-JEPA, no cache (before)": dict(checkpoint=checkpoint, cache_size=0),
                 "IA-JEPA, cache": dict(checkpoint=checkpoint),
                 "IA-JEPA, cache + window=1": dict(checkpoint=checkpoint, window=1)}
        print(f"PushBall-v0 64 px, 4 stacked frames, PPO n_steps=64 batch 64 x 4 epochs, "
              f"{args.steps_per_env} steps per env, model={args.model}, "
              f"torch threads {torch.get_num_threads()}\n")
        print("| extractor | n_envs | ms per env step | x NatureCNN |")
        print("|---|---|---|---|")
        for n_envs in args.n_envs:
            cnn = None
            for name, extractor in views.items():
                ms = ms_per_env_step(n_envs, args.steps_per_env, extractor)
                cnn = cnn or ms
                print(f"| {name} | {n_envs} | {ms:.1f} | {ms / cnn:.1f} |", flush=True)


if __name__ == "__main__":
    main()
