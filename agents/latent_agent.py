"""The zero-shot latent planner for PHYRE-Lite (`agent=latent`).

A candidate's placement is drawn into the initial scene by the env's own renderer (t=0 only,
nothing simulated), encoded by the frozen encoder, rolled out by the world model and scored by
the goal probe (both trained by `ia-world world_model`, agents/world_model.py); CEM searches the
placements and the evaluated ones are returned best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pymunk
import torch
from einops import repeat
from omegaconf import MISSING

from agents.baselines import puzzle_rng, sample_valid
from agents.goal_probe import (
    FIRST_WINDOW_PROBE,
    first_window_features,
    probe_features,
    probe_logits,
)
from agents.placements import (
    FEATURES,
    encode_windows,
    frame_with_ball,
    placement_state,
    state_tokens,
)
from agents.planner import PlannerConfig, plan
from agents.world_model import check_zero_shot
from agents.world_model_net import load_world_model
from envs.phyre_lite.scene import Puzzle, build_space, placement_error
from ia_world.checkpoint import load_encoder
from ia_world.config import check_path
from ia_world.errors import ConfigError


@dataclass
class StateAgentConfig:
    """The `agent=state_wm` config group: the positive control on simulator states.

    Its world model, CEM budget and rollout ablation are what `agent=latent` shares.
    """

    name: str = "state_wm"  # agent name (configs/agent/<name>.yaml)
    world_model: str = MISSING  # written by `ia-world world_model` (same split and fold)
    seed: int = 0  # fallback placement seed
    rollout: bool = True  # false: score by the window-0 probe alone (the rollout ablation)
    ablation: bool = True  # solve also scores every puzzle with rollout=false, side by side
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def validate(self) -> None:
        """The world model path is required."""
        check_path("world_model", self.world_model)


@dataclass
class LatentAgentConfig(StateAgentConfig):
    """The `agent=latent` config group: the frozen encoder besides the world model and CEM."""

    name: str = "latent"  # agent name (configs/agent/<name>.yaml)
    encoder: str = MISSING  # checkpoint or pretrain run directory of the frozen encoder

    def validate(self) -> None:
        """Both paths are required."""
        super().validate()
        check_path("encoder", self.encoder)


class LatentAgent:
    """CEM over placements scored by the goal probe on world-model rollouts of the first window.

    The first window is the frozen encoder's latents of the placement drawn into the initial
    scene (`agent=latent`), or the simulator's body states of that scene (`agent=state_wm`, the
    world model trained with `features=state`): the same dynamics model, probe and CEM.
    """

    def __init__(self, cfg: LatentAgentConfig | StateAgentConfig):
        self.cfg = cfg
        self.model, self.extra = load_world_model(cfg.world_model)
        self.state = FEATURES[int(self.extra.get("features", 0))] == "state"
        if self.state != (cfg.name == "state_wm"):
            raise ConfigError(f"{cfg.world_model}: a world model on "
                              f"{'states' if self.state else 'encoder latents'} needs "
                              f"agent={'state_wm' if self.state else 'latent'}")
        self.encoder = None if self.state else load_encoder(cfg.encoder)
        self.horizon = int(self.extra["horizon"])

    def score(self, space: pymunk.Space, actions: np.ndarray) -> np.ndarray:
        """Probe logits (M,) of candidate placements (M, 3); -inf where the placement is invalid."""
        scores = np.full(len(actions), -np.inf)
        valid = [i for i, a in enumerate(actions) if placement_error(space, a) is None]
        if not valid:
            return scores
        context = self.first_windows(space, actions[valid])
        placements = torch.as_tensor(actions[valid], dtype=torch.float32) \
            if self.model.cfg.action_dim else None
        if self.cfg.rollout:
            logits = probe_logits(self.extra, probe_features(self.model, context[:, None],
                                                             self.horizon, placements))
        else:
            logits = probe_logits(self.extra, first_window_features(context, placements),
                                  FIRST_WINDOW_PROBE)
        scores[valid] = logits.numpy()
        return scores

    def first_windows(self, space: pymunk.Space, actions: np.ndarray) -> torch.Tensor:
        """Window-0 tokens (M, P, D) of valid placements: encoder latents or body states."""
        if self.state:
            return torch.from_numpy(np.stack([state_tokens(placement_state(space, a))
                                              for a in actions]))
        grid = self.encoder.grid
        frames = np.stack([frame_with_ball(space, a, grid.size) for a in actions])
        clips = repeat(frames, "m h w c -> m t h w c", t=grid.frames)
        return encode_windows(self.encoder, clips, self.model.cfg.tokens_per_window)

    def propose(self, observation: np.ndarray, n: int, puzzle: Puzzle) -> np.ndarray:
        """(n, 3) placements, best probe score first; random valid ones fill any shortfall."""
        check_zero_shot(self.cfg.world_model, self.extra, [puzzle.task_id])
        rng = puzzle_rng(self.cfg.seed, puzzle)
        space = build_space(puzzle)
        result = plan(lambda a: self.score(space, a), np.zeros(3), np.ones(3),
                      self.cfg.planner, rng)
        ranked = result.ranked()[:n]
        if len(ranked) < n:
            ranked = np.concatenate([ranked, sample_valid(rng, space, n - len(ranked))])
        return ranked

