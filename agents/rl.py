"""`ia-world rl env=<id> encoder=<ckpt|cnn|state> algo=ppo steps=<n>`: PPO on frame observations
with the frozen IA-JEPA encoder or SB3's NatureCNN learned from scratch, or on the ground-truth
state (`state`: the ceiling control, what a policy can learn when perception is perfect).

A run directory <out>/<name>/ holds SB3 Monitor logs (<i>.monitor.csv: episode return r, length
l, time t), policy.safetensors (the policy's weights without the frozen encoder), run.json
(config, wall-clock seconds per environment step) and curves.png. `plot=[dir, ...]` draws the
learning curves (mean +- std over the seeds of each label) of finished runs instead of training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize
from tqdm import tqdm

import envs
from agents.sb3 import IAJEPAExtractor
from ia_world.atomic import atomic_write, atomic_write_json, atomic_write_text
from ia_world.checkpoint import write_weights
from ia_world.config import (
    as_dict,
    check_choice,
    check_name,
    check_path,
    check_range,
    validate_tree,
)
from ia_world.errors import ConfigError, DataError
from ia_world.report import ci_cell
from ia_world.runlock import check_out_dir, run_lock

ALGOS = ("ppo",)
PIXEL_FREE = ("cnn", "state")  # encoder choices that are not a checkpoint
CNN_MIN_SIZE = 36  # NatureCNN's three strided convolutions need at least 36x36 frames
CURVE_POINTS = 50
FINAL_SHARE = 0.25  # the final return: episodes that end in the last quarter of env steps


@dataclass
class PPOConfig:
    """PPO hyper-parameters passed to stable_baselines3.PPO."""

    n_steps: int = 128  # rollout steps per env per update
    batch_size: int = 64  # minibatch size
    n_epochs: int = 4  # epochs per update
    learning_rate: float = 3e-4  # Adam learning rate
    gamma: float = 0.99  # discount factor
    ent_coef: float = 0.0  # entropy bonus

    def validate(self) -> None:
        """Raise ConfigError on out-of-range hyper-parameters."""
        check_range("n_steps", self.n_steps, 2, 10**7)
        check_range("batch_size", self.batch_size, 2, 10**7)
        check_range("n_epochs", self.n_epochs, 1, 10_000)
        check_range("learning_rate", self.learning_rate, 0.0, 10.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("ent_coef", self.ent_coef, 0.0, 10.0)


@dataclass
class RLConfig:
    """`ia-world rl`: env, encoder (frozen IA-JEPA checkpoint or a CNN), PPO budget; or plots."""

    env_id: str = "ia_world/PushBall-v0"  # `env=<id>` on the command line
    encoder: str = "cnn"  # a checkpoint / run directory (frozen IA-JEPA), cnn (NatureCNN) or
    # state (ground-truth positions, velocities and goal: the ceiling control; an MLP policy)
    algo: str = "ppo"  # ppo
    steps: int = 20000  # environment steps (all envs together)
    seed: int = 0  # env and policy seed
    n_envs: int = 4  # parallel environments
    frame_stack: int = 4  # stretched to the encoder's clip length (see agents/sb3.py)
    size: int = 64  # render size; must equal the checkpoint's frame size
    episode_steps: int = 128  # env max_steps (truncation)
    pool: str = "mean"  # mean | attentive (trainable head)
    window: int = 0  # frozen encoder: 0 = all tokens; w = the last w token time steps only
    latent_cache: int = 4096  # frozen encoder: latents of this many recent observations kept
    # for PPO's update epochs (0: encode on every call; same latents up to float rounding)
    device: str = "cpu"  # cpu | cuda | auto
    name: str = ""  # run name; default <env>_<encoder>_seed<k>
    out: str = "runs/rl"  # runs go to <out>/<name>/
    plot: list[str] = field(default_factory=list)  # run dirs to plot instead of training
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def validate(self) -> None:
        """Raise ConfigError on unknown algorithms or out-of-range sizes."""
        check_choice("algo", self.algo, ALGOS)
        check_choice("env_id", self.env_id, list(envs.ENV_IDS))
        check_choice("pool", self.pool, ("mean", "attentive"))
        check_choice("device", self.device, ("cpu", "cuda", "auto"))
        check_path("out", self.out)
        if self.encoder not in PIXEL_FREE and not Path(self.encoder).exists():
            raise ConfigError(f"encoder must be 'cnn', 'state' or a checkpoint directory; "
                              f"{self.encoder} does not exist")
        if self.name:
            check_name("name", self.name)
        check_range("window", self.window, 0, 10_000)
        check_range("latent_cache", self.latent_cache, 0, 10**7)
        for key, high in (("steps", 10**9), ("n_envs", 256), ("frame_stack", 64),
                          ("size", 512), ("episode_steps", 10**6)):
            check_range(key, getattr(self, key), 1, high)
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("ppo.batch_size", self.ppo.batch_size, 2, self.ppo.n_steps * self.n_envs)
        if self.encoder == "cnn" and self.size < CNN_MIN_SIZE:
            raise ConfigError(f"size={self.size}: encoder=cnn (NatureCNN) needs frames of at "
                              f"least {CNN_MIN_SIZE}x{CNN_MIN_SIZE}")
        if not self.plot and self.steps < self.n_envs * self.episode_steps:
            raise ConfigError(f"steps={self.steps} is below n_envs x episode_steps = "
                              f"{self.n_envs * self.episode_steps}: no episode would finish "
                              "(no learning curve); raise steps or lower episode_steps")


def encoder_label(encoder: str) -> str:
    """Short name of an encoder choice: 'cnn', 'state' or the checkpoint's run directory name."""
    if encoder in PIXEL_FREE:
        return encoder
    path = Path(encoder).resolve()
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.name


def preprocess_overrides(overrides: list[str]) -> list[str]:
    """`env=<id>` names a Gymnasium id here, not the `env` config group: map it to `env_id`."""
    return [f"env_id={o[4:]}" if o.startswith("env=") else o for o in overrides]


class StateObservation(gym.Wrapper):
    """Ground truth in place of the frame: each dynamic object's position and velocity (the
    env's `info["states"]`, world units) and the task's goal, as one float32 vector."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        observation, _ = self.reset(seed=0)  # sizes the vector; the vec env reseeds it later
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, observation.shape, np.float32)

    def state(self, info: dict) -> np.ndarray:
        """(dynamic objects x 6 + goal,) vector of this step's ground truth."""
        states = info["states"]
        goal = np.asarray(getattr(self.env.unwrapped, "goal", ()), float)
        return np.concatenate([np.asarray(states["position"])[self.dynamic].ravel(),
                               np.asarray(states["velocity"])[self.dynamic].ravel(),
                               goal]).astype(np.float32)

    def reset(self, **kwargs):
        """Reset the env; the observation is its ground-truth state."""
        _, info = self.env.reset(**kwargs)
        self.dynamic = [i for i, obj in enumerate(info["objects"]) if not obj.get("static")]
        return self.state(info), info

    def step(self, action):
        """Step the env; the observation is its ground-truth state."""
        _, reward, terminated, truncated, info = self.env.step(action)
        return self.state(info), reward, terminated, truncated, info


def make_env(cfg: RLConfig, run_dir: Path):
    """Vectorised env with SB3 Monitor logs: stacked frames (channel-last, oldest first), or the
    ground-truth state normalised by running statistics (encoder=state)."""
    env_kwargs = {"size": cfg.size, "max_steps": cfg.episode_steps}
    state = cfg.encoder == "state"
    venv = make_vec_env(cfg.env_id, n_envs=cfg.n_envs, seed=cfg.seed, monitor_dir=str(run_dir),
                        env_kwargs=env_kwargs, vec_env_cls=DummyVecEnv,
                        wrapper_class=StateObservation if state else None)
    if state:
        return VecNormalize(venv, norm_obs=True, norm_reward=False)
    return VecFrameStack(venv, cfg.frame_stack, channels_order="last")


def make_agent(cfg: RLConfig, venv, run_dir: Path):
    """SB3 PPO with a CNN policy whose features extractor is NatureCNN or the frozen encoder
    (an MLP policy on the ground-truth state for encoder=state).

    PPO's losses go to run_dir/progress.csv (SB3's default logger would make a dir under /tmp).
    """
    policy_kwargs = {}
    if cfg.encoder not in PIXEL_FREE:
        policy_kwargs = dict(features_extractor_class=IAJEPAExtractor,
                             features_extractor_kwargs=dict(checkpoint=cfg.encoder, pool=cfg.pool,
                                                            device=cfg.device, window=cfg.window,
                                                            cache_size=cfg.latent_cache))
    policy = "MlpPolicy" if cfg.encoder == "state" else "CnnPolicy"
    agent = PPO(policy, venv, seed=cfg.seed, device=cfg.device, policy_kwargs=policy_kwargs,
                verbose=0, **as_dict(cfg.ppo))
    agent.set_logger(configure_logger(str(run_dir), ["csv"]))
    return agent


def trainable_state(policy) -> dict:
    """The policy's weights without the frozen encoder (it stays in its checkpoint), each
    tensor once (a shared extractor also appears as pi_/vf_features_extractor)."""
    state, seen = {}, set()
    for key, value in policy.state_dict().items():
        if ".encoder." not in key and value.data_ptr() not in seen:
            seen.add(value.data_ptr())
            state[key] = value.detach().cpu().contiguous()
    return state


def observation_statistics(venv) -> dict:
    """The running mean / variance a VecNormalize env scaled the observations by (none else)."""
    if not isinstance(venv, VecNormalize):
        return {}
    return {"observation_mean": torch.as_tensor(venv.obs_rms.mean, dtype=torch.float32),
            "observation_var": torch.as_tensor(venv.obs_rms.var, dtype=torch.float32)}


class Progress(BaseCallback):
    """tqdm bar over environment steps."""

    def __init__(self, total: int, name: str):
        super().__init__()
        self.total, self.name = total, name

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=f"rl {self.name}", unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def train(cfg: RLConfig) -> Path:
    """Train PPO for cfg.steps env steps; write the run directory and return it."""
    run_dir = Path(cfg.out) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    venv = make_env(cfg, run_dir)
    agent = make_agent(cfg, venv, run_dir)
    start = time.perf_counter()
    agent.learn(total_timesteps=cfg.steps, callback=Progress(cfg.steps, cfg.name))
    seconds = time.perf_counter() - start
    venv.close()
    write_weights(run_dir / "policy.safetensors", {**trainable_state(agent.policy),
                                                   **observation_statistics(venv)})
    atomic_write_json(run_dir / "run.json", {
        "config": as_dict(cfg), "label": encoder_label(cfg.encoder),
        "env_steps": int(agent.num_timesteps), "seconds": seconds,
        "seconds_per_env_step": seconds / max(agent.num_timesteps, 1)})
    plot_curves(labelled_returns([run_dir]), run_dir / "curves.png")
    return run_dir


def episode_returns(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative env steps, returns) of a run's finished episodes, in order of finishing."""
    rows = []
    for path in sorted(run_dir.glob("*.monitor.csv")):
        try:
            table = np.genfromtxt(path, delimiter=",", skip_header=2, ndmin=2)  # r, l, t
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not an SB3 monitor file ({error})".splitlines()[0]) from None
        if table.size and (table.shape[1] < 3 or not np.isfinite(table[:, :3]).all()):
            raise DataError(f"{path}: not an SB3 monitor file (rows of r, l, t numbers)")
        rows.extend(table[:, :3].tolist() if table.size else [])
    if not rows:
        raise DataError(f"{run_dir}: no finished episodes in *.monitor.csv")
    returns, lengths, times = np.array(rows).T
    order = np.argsort(times, kind="stable")
    return np.cumsum(lengths[order]), returns[order]


def smoothed_curve(steps: np.ndarray, returns: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Mean return of the episodes in each window of the step grid (carried forward if empty)."""
    curve, last = np.empty(len(grid)), returns[0]
    edges = np.concatenate([[0.0], grid])
    for i in range(len(grid)):
        inside = returns[(steps > edges[i]) & (steps <= edges[i + 1])]
        last = inside.mean() if inside.size else last
        curve[i] = last
    return curve


def run_dirs(paths: list[str]) -> list[Path]:
    """Run directories named directly or found one level below the given paths."""
    found = []
    for path in map(Path, paths):
        found += [path] if (path / "run.json").is_file() else sorted(
            p.parent for p in path.glob("*/run.json"))
    if not found:
        raise DataError(f"rl plot: no run directories (with run.json) in {paths}")
    return found


def run_record(run: Path) -> tuple[str, int]:
    """(label, seed) that a run's run.json stores; DataError naming the file when unreadable."""
    path = run / "run.json"
    try:
        info = json.loads(path.read_text())
        label, seed = info["label"], info["config"]["seed"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: unreadable run file ({type(error).__name__})") from None
    if not isinstance(label, str) or not isinstance(seed, int):
        raise DataError(f"{path}: label {label!r} / seed {seed!r} are not a string / an int")
    return label, seed


def labelled_returns(runs: list[Path]) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """label -> seed -> (cumulative env steps, returns) of each run, every file read once;
    DataError on a second run of the same label and seed."""
    labelled: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for run in runs:
        label, seed = run_record(run)
        if seed in labelled.setdefault(label, {}):
            raise DataError(f"{run}: a second {label} run of seed {seed}")
        labelled[label][seed] = episode_returns(run)
    return labelled


def final_return(steps: np.ndarray, returns: np.ndarray, share: float = FINAL_SHARE) -> float:
    """Mean return of the episodes that finished in the last `share` of the env steps."""
    return float(returns[steps > (1 - share) * steps[-1]].mean())


def returns_table(labelled: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]) -> str:
    """Markdown: per label, the final return's mean over seeds with its t-interval; each other
    label minus the first, paired by seed (the seeds both have), with its t-interval."""
    finals = {label: {seed: final_return(*curve) for seed, curve in runs.items()}
              for label, runs in labelled.items()}
    lines = [f"| encoder | final return (last {FINAL_SHARE:.0%} of env steps), mean [95% "
             f"t-interval over seeds] | seeds | minus {next(iter(finals))}, paired by seed |",
             "|---|---|---|---|"]
    first = next(iter(finals.values()))
    for label, by_seed in finals.items():
        paired = [by_seed[s] - first[s] for s in sorted(set(by_seed) & set(first))]
        versus = "" if by_seed is first else f"{ci_cell(paired)} (n={len(paired)})"
        lines.append(f"| {label} | {ci_cell(list(by_seed.values()))} | {len(by_seed)} | {versus} |")
    return "\n".join(lines) + "\n"


def plot_curves(labelled: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]],
                out: Path) -> Path:
    """Learning curves, mean +- std over the runs sharing a label, written to `out` (png)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after choosing the headless backend

    end = min(steps[-1] for curves in labelled.values() for steps, _ in curves.values())
    grid = np.linspace(end / CURVE_POINTS, end, CURVE_POINTS)
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, curves in labelled.items():
        values = np.stack([smoothed_curve(s, r, grid) for s, r in curves.values()])  # S points
        mean, std = values.mean(0), values.std(0)
        axis.plot(grid, mean, label=f"{label} (n={len(curves)})")
        axis.fill_between(grid, mean - std, mean + std, alpha=0.25)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("episode return")
    axis.legend()
    figure.tight_layout()
    atomic_write(out, lambda temp: figure.savefig(temp, format="png", dpi=120))
    plt.close(figure)
    return out


def rl(config: RLConfig) -> Path:
    """Train one run (returns its directory), or plot the runs given in `plot` (the PNG)."""
    validate_tree(config)
    if config.plot:
        with run_lock(config.out):
            labelled = labelled_returns(run_dirs(config.plot))
            path = plot_curves(labelled, Path(config.out) / "curves.png")
            table = returns_table(labelled)
            atomic_write_text(Path(config.out) / "returns.md", table)
        print(f"{table}rl: learning curves in {path}, this table in {path.parent / 'returns.md'}")
        return path
    if not config.name:
        env_name = config.env_id.split("/")[-1]
        config.name = f"{env_name}_{encoder_label(config.encoder)}_seed{config.seed}"
    check_out_dir(config.out)
    with run_lock(Path(config.out) / config.name):  # checked writable and held before any work
        run_dir = train(config)
    steps, returns = episode_returns(run_dir)
    print(f"rl: {len(returns)} episodes in {int(steps[-1])} env steps; mean return of the last "
          f"{min(len(returns), 10)}: {returns[-10:].mean():.3f}; run in {run_dir}")
    return run_dir
