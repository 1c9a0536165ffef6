"""Can QA be answered from the video's events alone? The shortcut control vs the ceiling.

Simulates fixed-count Billiards splits (5 balls, as `evaluate`'s) from VALIDATION base seeds
(5005 / 6006, never `evaluate`'s test seeds 3003 / 4004), generates the questions and trains the
same QA head on two subjects: `ceiling` (ground-truth object state) and `shortcut` (only the
events the video shows: which pairs collided, when; shortcut_tokens). Prints per-option
accuracy per type, the structure of the options (how often right / wrong counterfactual options
collided in the video; how often an explanatory candidate hit A or B itself, by answer) and the
heads' wall time.

    python benchmarks/qa_shortcuts.py                    # evaluate's sizes (1,600 / 256)
    python benchmarks/qa_shortcuts.py --train 400 --heldout 150    # quick
    python benchmarks/qa_shortcuts.py --timing           # + encoder-sized random subjects
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ia_world.data.generator import EnvConfig
from ia_world.eval.evaluate import FixedSplitConfig, fixed_count_env, simulate_split
from ia_world.eval.features import SUBJECTS, attribute_vocab, ceiling_features
from ia_world.eval.qa import QUESTION_TYPES
from ia_world.eval.qa_generator import generate_questions, option_structure, shortcut_tokens
from ia_world.eval.qa_head import QAHeadConfig, evaluate_qa

FRAMES, SIZE, HORIZON = 16, 64, 8          # the tiny model's clip and evaluate's horizon
ENCODER_TOKENS, ENCODER_DIM = 64, 96       # the tiny model's QA tokens (512 pooled 2x2x2)
PIXEL_TOKENS, PIXEL_DIM = FRAMES - 1, 16   # the pixel control's QA tokens


def split(env, episodes: int, seed: int):
    """A fixed-count split's episodes (ground truth only) and its questions."""
    eps = simulate_split(env, episodes, seed, FRAMES)
    return eps, generate_questions(env, eps, FRAMES, HORIZON, seed)


def main() -> None:
    """Print shortcut / ceiling / text accuracy per type and option structure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = FixedSplitConfig()
    parser.add_argument("--train", type=int, default=defaults.train_episodes)
    parser.add_argument("--heldout", type=int, default=defaults.heldout_episodes)
    parser.add_argument("--train-seed", type=int, default=5005)
    parser.add_argument("--heldout-seed", type=int, default=6006)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timing", action="store_true",
                        help="also train heads on encoder- and pixel-sized random tokens")
    args = parser.parse_args()
    env = fixed_count_env(EnvConfig(), defaults.count, SIZE)
    start = time.perf_counter()
    train, qa_train = split(env, args.train, args.train_seed)
    heldout, qa_heldout = split(env, args.heldout, args.heldout_seed)
    print(f"simulate + questions: {time.perf_counter() - start:.1f} s; "
          f"{len(qa_train)} / {len(qa_heldout)} questions")
    vocab = attribute_vocab(train + heldout)
    objects = defaults.count
    subjects = {}
    for name, eps in (("train", train), ("heldout", heldout)):
        short = shortcut_tokens(eps, FRAMES, objects, vocab)
        subjects[name] = {"ceiling": ceiling_features(eps, FRAMES, vocab, objects).tokens,
                          "shortcut": short}
        if args.timing:
            rng = np.random.default_rng(0)
            for subject in ("encoder", "floor", "static"):
                subjects[name][subject] = rng.normal(
                    size=(len(eps), ENCODER_TOKENS, ENCODER_DIM)).astype(np.float32)
            subjects[name]["pixel"] = rng.normal(
                size=(len(eps), PIXEL_TOKENS, PIXEL_DIM)).astype(np.float32)
    cfg = QAHeadConfig(workers=args.workers)
    start = time.perf_counter()
    qa = evaluate_qa(qa_train, qa_heldout, subjects["train"], subjects["heldout"], cfg)
    seconds = time.perf_counter() - start
    heads = len(subjects["train"])
    print(f"QA heads: {seconds:.1f} s for {heads} heads ({cfg.workers} workers)"
          + (f"; the evaluate set ({', '.join(SUBJECTS)} + shortcut)" if args.timing else ""))
    print(f"{'type':<16}{'questions':>10}" + "".join(f"{s:>10}" for s in qa["subjects"]))
    for qtype in QUESTION_TYPES:
        row = [qa["subjects"][s].get(qtype, {}).get("per_option", float("nan"))
               for s in qa["subjects"]]
        count = qa["subjects"]["ceiling"].get(qtype, {}).get("questions", 0)
        print(f"{qtype:<16}{count:>10}" + "".join(f"{v:>10.3f}" for v in row))
    print("option structure (held-out):")
    for key, value in option_structure(heldout, qa_heldout, FRAMES).items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
