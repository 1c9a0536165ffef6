"""Causal QA in CLEVRER's question schema: questions, program vocabulary, accuracy, baselines.

Every question is a functional program (CLEVRER-like tokens) with multiple-choice options, each
option a program marked correct or wrong. Generated and real CLEVRER questions share this form,
so the same head and metrics serve both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ia_world.errors import DataError
from ia_world.eval.stats import bootstrap_ci, encoder_differences, paired_bootstrap_cis

QUESTION_TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")
PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
OBJECTS, UNIQUE = "objects", "unique"  # an object reference: objects <filters...> unique


@dataclass
class Choice:
    """One multiple-choice option: its text, its program and whether it is correct."""

    text: str
    program: list[str]
    correct: bool


@dataclass
class Question:
    """One question about the clip `clip` (an index into the clips it is asked about)."""

    clip: int
    question_type: str
    text: str
    program: list[str]
    choices: list[Choice]


def to_clevrer(question: Question, question_id: int) -> dict:
    """The question as a CLEVRER record (question_type, program, choices with answer)."""
    return {"question_id": question_id, "question_type": question.question_type,
            "question": question.text, "program": list(question.program),
            "choices": [{"choice_id": i, "choice": c.text, "program": list(c.program),
                         "answer": "correct" if c.correct else "wrong"}
                        for i, c in enumerate(question.choices)]}


def from_clevrer(record: dict, clip: int) -> Question:
    """A CLEVRER multiple-choice record (raw file or the CLEVRER loader's) as a Question."""
    where = f"CLEVRER question {record.get('question_id')}"
    try:
        answers = [c["answer"] for c in record["choices"]]
        if not answers or any(a not in ("correct", "wrong", True, False) for a in answers):
            raise DataError(f"{where}: not a multiple-choice question with answered choices")
        choices = [Choice(c["choice"], list(c["program"]), c["answer"] in ("correct", True))
                   for c in record["choices"]]
        return Question(clip, record["question_type"], record["question"],
                        list(record["program"]), choices)
    except (KeyError, TypeError) as error:
        raise DataError(f"{where}: missing {error}") from None


def build_vocab(questions: list[Question]) -> dict[str, int]:
    """Token -> id over the programs of `questions` (pad 0, unk 1, sep 2)."""
    tokens = sorted({tok for q in questions for p in [q.program, *(c.program for c in q.choices)]
                     for tok in p})
    return {tok: i for i, tok in enumerate([PAD, UNK, SEP, *tokens])}


def option_rows(questions: list[Question]) -> list[tuple[int, int, Choice]]:
    """Flatten to one row per option: (question index, clip index, choice)."""
    return [(qi, q.clip, c) for qi, q in enumerate(questions) for c in q.choices]


def encode_options(questions: list[Question], vocab: dict[str, int],
                   max_len: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token ids (R, L) of `question <sep> option`, clip index (R,), label (R,), question (R,)."""
    rows = option_rows(questions)
    ids = np.zeros((len(rows), max_len), np.int64)
    for r, (qi, _, choice) in enumerate(rows):
        tokens = [*questions[qi].program, SEP, *choice.program][-max_len:]
        ids[r, :len(tokens)] = [vocab.get(tok, vocab[UNK]) for tok in tokens]
    clips = np.array([clip for _, clip, _ in rows], np.int64)
    labels = np.array([c.correct for _, _, c in rows], np.float32)
    question_index = np.array([qi for qi, _, _ in rows], np.int64)
    return ids, clips, labels, question_index


def correctness_by_type(questions: list[Question], predicted: np.ndarray) -> dict[str, dict]:
    """Per type and unit (per_option, per_question): (right (R,) 0/1, clip of each row (R,));
    predicted (R,) bool, one per option."""
    rows = option_rows(questions)
    if len(rows) != len(predicted):
        raise DataError(f"QA accuracy: {len(predicted)} predictions for {len(rows)} options")
    right = np.array([bool(p) == c.correct for p, (_, _, c) in zip(predicted, rows)])
    question_of = np.array([qi for qi, _, _ in rows])
    result = {}
    for qtype in sorted({q.question_type for q in questions}):
        members = [qi for qi, q in enumerate(questions) if q.question_type == qtype]
        option_mask = np.isin(question_of, members)
        result[qtype] = {
            "per_option": (right[option_mask].astype(float),
                           np.array([questions[qi].clip for qi in question_of[option_mask]])),
            "per_question": (np.array([right[question_of == qi].all() for qi in members], float),
                             np.array([questions[qi].clip for qi in members]))}
    return result


def accuracy_by_type(questions: list[Question], predicted: np.ndarray,
                     with_ci: bool = False) -> dict[str, dict]:
    """Per-option and per-question (all options right) accuracy per type; predicted (R,) bool.

    with_ci: add 95% bootstrap CIs over clips (`per_option_ci`, `per_question_ci`).
    """
    result = {}
    for qtype, units in correctness_by_type(questions, predicted).items():
        (options, option_clips), (per_question, question_clips) = units.values()
        result[qtype] = {"per_option": float(options.mean()),
                         "per_question": float(per_question.mean()),
                         "questions": len(per_question), "options": len(options)}
        if with_ci:
            result[qtype]["per_option_ci"] = clip_bootstrap_ci(options, option_clips)
            result[qtype]["per_question_ci"] = clip_bootstrap_ci(per_question, question_clips)
    return result


def clip_totals(values: np.ndarray, clips: np.ndarray,
                order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sum of values (R,) and row count per clip, clips numbered as in `order` (default: the
    sorted unique clips): (sums (C,), counts (C,)); a clip of `order` with no rows counts 0."""
    order = np.unique(clips) if order is None else order
    clip_of = np.searchsorted(order, clips)
    return (np.bincount(clip_of, weights=values, minlength=len(order)),
            np.bincount(clip_of, minlength=len(order)).astype(float))


def clip_bootstrap_ci(values: np.ndarray, clips: np.ndarray) -> list[float]:
    """95% CI of the mean of values (R,) resampling the clips (R,) they belong to."""
    sums, counts = clip_totals(values, clips)

    def mean(picked: np.ndarray) -> float:
        return float(sums[picked].sum() / counts[picked].sum())

    return bootstrap_ci(mean, len(sums))


def paired_qa_cis(questions: list[Question], predicted: dict[str, np.ndarray],
                  seed: int = 0) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Paired clip bootstrap of QA accuracy: type -> unit -> CIs of encoder - every other subject
    and of the gap closed (floor to ceiling); predicted: subject -> (R,) bool per option.

    The held-out clips are resampled once per draw for every subject, type and unit, so a
    clip's difficulty cancels in each difference (the QA twin of `probe.paired_probe_cis`).
    """
    right = {s: correctness_by_type(questions, p) for s, p in predicted.items()}
    order = np.unique([q.clip for q in questions])
    first = right[next(iter(right))]
    totals = {(t, u): {s: clip_totals(*right[s][t][u], order) for s in right}
              for t, units in first.items() for u in units}

    def statistics(picked: np.ndarray) -> dict[str, float]:
        found = {}
        for (qtype, unit), subjects in totals.items():
            rows = next(iter(subjects.values()))[1][picked].sum()  # this type's rows drawn
            scores = {s: sums[picked].sum() / rows if rows else np.nan
                      for s, (sums, _) in subjects.items()}
            found.update({f"{qtype}|{unit}|{k}": v
                          for k, v in encoder_differences(scores).items()})
        return found

    result: dict[str, dict] = {}
    for key, ci in paired_bootstrap_cis(statistics, len(order), seed).items():
        qtype, unit, name = key.split("|")
        result.setdefault(qtype, {}).setdefault(unit, {})[name] = ci
    return result


def majority_baseline(train: list[Question], test: list[Question]) -> dict[str, dict]:
    """Accuracy on `test` of answering every option with its type's majority label in `train`."""
    counts = {t: Counter(c.correct for q in train if q.question_type == t for c in q.choices)
              for t in QUESTION_TYPES}
    majority = {t: (c.most_common(1)[0][0] if c else False) for t, c in counts.items()}
    predicted = np.array([majority[q.question_type] for q in test for _ in q.choices])
    return accuracy_by_type(test, predicted)


def random_baseline(test: list[Question]) -> dict[str, dict]:
    """Expected accuracy of answering each option by a fair coin: 0.5 per option, 0.5^k per q."""
    result = {}
    for qtype in sorted({q.question_type for q in test}):
        members = [q for q in test if q.question_type == qtype]
        result[qtype] = {"per_option": 0.5,
                         "per_question": float(np.mean([0.5 ** len(q.choices) for q in members])),
                         "questions": len(members),
                         "options": sum(len(q.choices) for q in members)}
    return result


def correct_share(questions: list[Question]) -> dict[str, float]:
    """Share of options marked correct, per type (0.5 = balanced)."""
    return {t: float(np.mean([c.correct for q in questions if q.question_type == t
                              for c in q.choices]))
            for t in sorted({q.question_type for q in questions})}
