"""Can QA be answered from the video's events alone? The shortcut control vs the ceiling.

Simulates fixed-count Billiards splits (5 balls, as `evaluate`'s) from VALIDATION base seeds
(5005 / 6006, never `evaluate`'s test seeds 3003 / 4004), generates the questions and trains the
same QA head on two subjects: `ceiling` (ground-truth object state) and `shortcut` (only the
events the video shows: which pairs collided, when; shortcut_tokens). Prints per-option
accuracy per type, the epochs each head ran, and the structure of the options (how often right /
wrong counterfactual options collided in the video; how often an explanatory candidate hit A or
B itself, by answer). --timing: CPU seconds of one encoder-sized head (the tiny model's QA
tokens, random) under the old head budget (20 epochs, width 64, hidden 256, no early stopping)
and under the current defaults, measured in this run, and of the six heads `evaluate` trains.

    python benchmarks/qa_shortcuts.py                    # evaluate's sizes (1,600 / 256)
    python benchmarks/qa_shortcuts.py --train 400 --heldout 150    # quick
    python benchmarks/qa_shortcuts.py --timing --cache /tmp/qa-cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ia_world.atomic import atomic_write_json
from ia_world.data.generator import EnvConfig
from ia_world.eval import qa_generator
from ia_world.eval.features import attribute_vocab, ceiling_features
from ia_world.eval.qa import QUESTION_TYPES, from_clevrer, to_clevrer
from ia_world.eval.qa_generator import generate_questions, option_structure, shortcut_tokens
from ia_world.eval.qa_head import QAHeadConfig, evaluate_qa
from ia_world.eval.simulated import FixedSplitConfig, fixed_count_env, simulate_split

FRAMES, SIZE, HORIZON = 16, 64, 8          # the tiny model's clip and evaluate's horizon
ENCODER_TOKENS, ENCODER_DIM = 64, 96       # the tiny model's QA tokens (512 pooled 2x2x2)
PIXEL_TOKENS, PIXEL_DIM = FRAMES - 1, 16   # the pixel control's QA tokens
OLD_HEAD = QAHeadConfig(width=64, hidden=256, epochs=20, val_fraction=0.0)  # before issue 25


def split(env, episodes: int, seed: int, cache: str | None):
    """A fixed-count split's episodes (ground truth only) and its questions (cached by the
    generator's source, the split and the seed)."""
    eps = simulate_split(env, episodes, seed, FRAMES)
    source = Path(qa_generator.__file__).read_bytes()
    key = hashlib.sha256(source + f"{episodes} {seed} {FRAMES} {HORIZON}".encode()).hexdigest()
    path = Path(cache or ".") / f"questions-{key[:16]}.json"
    if cache and path.is_file():
        return eps, [from_clevrer(r, r["clip"]) for r in json.loads(path.read_text())]
    questions = generate_questions(env, eps, FRAMES, HORIZON, seed)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, [dict(to_clevrer(q, i), clip=q.clip)
                                 for i, q in enumerate(questions)])
    return eps, questions


def cpu_seconds(qa_train, qa_heldout, train: dict, heldout: dict, cfg: QAHeadConfig) -> float:
    """CPU seconds of training and scoring these subjects' heads in this process."""
    start = time.process_time()
    evaluate_qa(qa_train, qa_heldout, train, heldout, replace(cfg, workers=1))
    return time.process_time() - start


def timing(qa_train, qa_heldout, train: dict, heldout: dict) -> None:
    """Old vs current head budget on one encoder-sized subject; the six heads of evaluate."""
    rng = np.random.default_rng(0)
    tokens = [{s: rng.normal(size=(len(x["ceiling"]), *shape)).astype(np.float32)
               for s, shape in (("encoder", (ENCODER_TOKENS, ENCODER_DIM)),
                                ("floor", (ENCODER_TOKENS, ENCODER_DIM)),
                                ("static", (ENCODER_TOKENS, ENCODER_DIM)),
                                ("pixel", (PIXEL_TOKENS, PIXEL_DIM)))} | x
               for x in (train, heldout)]
    one = [{"encoder": t["encoder"]} for t in tokens]
    old = cpu_seconds(qa_train, qa_heldout, *one, OLD_HEAD)
    new = cpu_seconds(qa_train, qa_heldout, *one, QAHeadConfig())
    print(f"one encoder-sized head: {old:.1f} CPU s (old budget) vs {new:.1f} CPU s (current); "
          f"ratio {old / new:.2f}")
    six = cpu_seconds(qa_train, qa_heldout, *tokens, QAHeadConfig())
    print(f"six heads (encoder, floor, static, pixel, ceiling, shortcut), current budget: "
          f"{six:.1f} CPU s, about {six / 2:.1f} s on 2 idle cores")


def main() -> None:
    """Print shortcut / ceiling accuracy per type and option structure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults, head = FixedSplitConfig(), QAHeadConfig()
    parser.add_argument("--train", type=int, default=defaults.train_episodes)
    parser.add_argument("--heldout", type=int, default=defaults.heldout_episodes)
    parser.add_argument("--train-seed", type=int, default=5005)
    parser.add_argument("--heldout-seed", type=int, default=6006)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", default=None, help="folder caching the questions")
    parser.add_argument("--old-head", action="store_true", help="the head budget before #25")
    for key in ("width", "hidden", "epochs"):
        parser.add_argument(f"--{key}", type=int, default=getattr(head, key))
    parser.add_argument("--val-fraction", type=float, default=head.val_fraction)
    parser.add_argument("--timing", action="store_true",
                        help="CPU seconds of the heads, old vs current budget")
    args = parser.parse_args()
    env = fixed_count_env(EnvConfig(), defaults.count, SIZE)
    start = time.perf_counter()
    train, qa_train = split(env, args.train, args.train_seed, args.cache)
    heldout, qa_heldout = split(env, args.heldout, args.heldout_seed, args.cache)
    print(f"simulate + questions: {time.perf_counter() - start:.1f} s; "
          f"{len(qa_train)} / {len(qa_heldout)} questions")
    vocab = attribute_vocab(train + heldout)
    subjects = [{"ceiling": ceiling_features(eps, FRAMES, vocab, defaults.count).tokens,
                 "shortcut": shortcut_tokens(eps, FRAMES, defaults.count, vocab)}
                for eps in (train, heldout)]
    if args.timing:
        timing(qa_train, qa_heldout, *subjects)
        return
    cfg = OLD_HEAD if args.old_head else QAHeadConfig(
        width=args.width, hidden=args.hidden, epochs=args.epochs,
        val_fraction=args.val_fraction)
    cfg = replace(cfg, workers=args.workers)
    start = time.perf_counter()
    qa = evaluate_qa(qa_train, qa_heldout, *subjects, cfg)
    print(f"QA heads: {time.perf_counter() - start:.1f} s wall ({cfg.workers} workers), "
          f"epochs run {qa['epochs']}; head {cfg}")
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
