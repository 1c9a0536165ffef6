"""PHYRE-Lite: Pymunk puzzles in the spirit of PHYRE's BALL tier (templates, env, AUCCESS)."""

from .auccess import auccess, mean_auccess, success_at
from .env import PhyreLiteEnv
from .scene import BodySpec, Outcome, Puzzle, attempt, build_space, placement_error, render
from .splits import NUM_FOLDS, SPLITS, split_tasks
from .templates import (
    TEMPLATES,
    VARIANTS_PER_TEMPLATE,
    make_puzzle,
    parse_task_id,
    register_template,
)

__all__ = ["NUM_FOLDS", "SPLITS", "TEMPLATES", "VARIANTS_PER_TEMPLATE", "BodySpec", "Outcome",
           "PhyreLiteEnv", "Puzzle", "attempt", "auccess", "build_space", "make_puzzle",
           "mean_auccess", "parse_task_id", "placement_error", "register_template", "render",
           "split_tasks", "success_at"]
