"""What do an encoder's tokens hold: what positions share, and each body's own motion?

For the floor (the first checkpoint's initialisation) and each checkpoint given, encodes the
learning curves' fixed-count episodes (ia_world/eval/curves.py: probe-fitting episodes and the
VALIDATION-role held-out ones) and prints, on the held-out episodes:
  - position share: the share of the tokens' variance that the per-position means over clips
    explain (ia_world/eval/spectrum.py). Rising, the features drift toward what every clip has at
    a position (position embedding, background), which a predictor told the positions gets free;
  - object velocity / speed R²: ridge from each dynamic body's own first-frame tokens (steps 0
    and 1, as `evaluate`'s object probe) to its velocity (vx, vy) and its speed, fitted on
    `--train` probe-fitting episodes. Falling, the motion leaves the tokens themselves, not only
    the pooled features of the curves:

    python benchmarks/token_content.py runs/a/checkpoints/step-00001000 runs/a --cache runs/cache
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from ia_world.checkpoint import (
    checkpoint_model_config,
    clip_batches,
    encode_batches,
    initial_encoder,
    load_encoder,
    resolve_checkpoint,
)
from ia_world.data.generator import EnvConfig
from ia_world.eval.curves import ENCODE_BATCH, CurveConfig, curve_episodes
from ia_world.eval.features import object_velocities, split_clips, token_objects
from ia_world.eval.probe import fit_probe
from ia_world.eval.spectrum import position_share


def main() -> None:
    """Print one row per encoder: position share and the per-object probes (val held-out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint or run directories")
    parser.add_argument("--train", type=int, default=600, help="probe-fitting episodes")
    parser.add_argument("--cache", help="where simulated splits are kept")
    args = parser.parse_args()
    grid = checkpoint_model_config(resolve_checkpoint(args.checkpoints[0])).grid
    splits = curve_episodes(replace(CurveConfig(cache=args.cache), train_episodes=args.train),
                            EnvConfig(), grid)
    clips = [split_clips(episodes, grid) for episodes in splits]
    velocity = [np.concatenate([object_velocities(ep) for ep in eps]) for eps in splits]  # O 2
    speed = [np.linalg.norm(v, axis=1) for v in velocity]
    encoders = [("floor", initial_encoder(args.checkpoints[0]))] + [
        (path, load_encoder(path)) for path in args.checkpoints]
    print("| encoder | position share | object velocity R² | object speed R² |\n|---|---|---|---|")
    for name, encoder in encoders:
        tokens = [encode_batches(encoder.encode, clip_batches(split, ENCODE_BATCH),
                                 desc=name).numpy() for split in clips]            # E N D
        objects = [token_objects(t, eps, grid) for t, eps in zip(tokens, splits)]  # O 2D
        velocity_r2 = fit_probe(objects[0], velocity[0], objects[1], velocity[1])["r2"]
        speed_r2 = fit_probe(objects[0], speed[0], objects[1], speed[1])["r2"]
        print(f"| {name} | {position_share(tokens[1]):.3f} | {velocity_r2:.3f} | "
              f"{speed_r2:.3f} |", flush=True)


if __name__ == "__main__":
    main()
