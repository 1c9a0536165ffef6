"""How much of an encoder's token variance do grid positions alone explain?

For the floor (the first checkpoint's initialisation) and each checkpoint given, encodes the
learning curves' VALIDATION-role held-out clips (ia_world/eval/curves.py) and prints the share of
the tokens' variance that the per-position means over clips explain (ia_world/eval/spectrum.py
`position_share`). A share that rises while the curve probes fall says the features drift toward
what every clip has at a position (position embedding, background), which a JEPA predictor told
the target positions can predict for free:

    python benchmarks/position_share.py runs/a/checkpoints/step-00001000 runs/a --cache runs/cache
"""

from __future__ import annotations

import argparse

from ia_world.checkpoint import (
    checkpoint_model_config,
    clip_batches,
    encode_batches,
    initial_encoder,
    load_encoder,
    resolve_checkpoint,
)
from ia_world.data.generator import EnvConfig
from ia_world.eval.curves import ENCODE_BATCH, CurveConfig, curve_splits
from ia_world.eval.spectrum import position_share


def main() -> None:
    """Print one row per encoder: its position share on the val held-out clips."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint or run directories")
    parser.add_argument("--cache", help="where simulated splits are kept")
    args = parser.parse_args()
    grid = checkpoint_model_config(resolve_checkpoint(args.checkpoints[0])).grid
    clips = curve_splits(CurveConfig(cache=args.cache), EnvConfig(), grid).clips[1]
    encoders = [("floor", initial_encoder(args.checkpoints[0]))] + [
        (path, load_encoder(path)) for path in args.checkpoints]
    print("| encoder | position share |\n|---|---|")
    for name, encoder in encoders:
        tokens = encode_batches(encoder.encode, clip_batches(clips, ENCODE_BATCH),
                                desc=name).numpy()                                # E N D
        print(f"| {name} | {position_share(tokens):.3f} |", flush=True)


if __name__ == "__main__":
    main()
