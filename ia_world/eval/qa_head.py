"""A small QA head on frozen clip latents: program-structured reads, then an MLP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ia_world.config import check_range
from ia_world.errors import DataError
from ia_world.eval.qa import (
    OBJECTS,
    QUESTION_TYPES,
    SEP,
    UNIQUE,
    Question,
    accuracy_by_type,
    build_vocab,
    correct_share,
    encode_options,
    majority_baseline,
    paired_qa_cis,
    random_baseline,
)
from ia_world.parallel import ordered_map


@dataclass
class QAHeadConfig:
    """Width of the head and its training budget."""

    width: int = 64  # token, key and value width
    hidden: int = 256  # width of the MLP that reads the answer off the objects read
    dropout: float = 0.2  # dropout in that MLP
    epochs: int = 20  # most training epochs
    # early stopping: this share of the TRAINING split's clips is held out, the head keeps the
    # epoch with the lowest loss on them and stops after `patience` epochs without a better one
    # (0: no early stopping, every training clip is fitted for all epochs)
    val_fraction: float = 0.1
    patience: int = 3  # epochs without a better validation loss before stopping
    batch_size: int = 256  # option rows per step
    lr: float = 3e-3  # AdamW learning rate
    weight_decay: float = 0.05  # AdamW weight decay
    seed: int = 0  # initialisation and batch order seed
    min_questions: int = 50  # per type and split, else DataError (0: no check)
    workers: int = 2  # heads trained side by side, one process and one thread each

    def validate(self) -> None:
        """Check ranges."""
        check_range("width", self.width, 8, 4096)
        check_range("hidden", self.hidden, 8, 16384)
        check_range("dropout", self.dropout, 0.0, 0.99)
        check_range("epochs", self.epochs, 1, 10_000)
        check_range("val_fraction", self.val_fraction, 0.0, 0.5)
        check_range("patience", self.patience, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("min_questions", self.min_questions, 0, 10**6)
        check_range("workers", self.workers, 1, 256)


def reference_spans(program_ids: np.ndarray, vocab: dict[str, int]) -> np.ndarray:
    """Span index (R, L) of each program token: k >= 1 for the k-th object reference (from
    "objects" to the next "unique", or to the end of its program part), 0 for the rest."""
    start, stop, sep = vocab.get(OBJECTS, -1), vocab.get(UNIQUE, -1), vocab[SEP]
    spans = np.zeros_like(program_ids)
    for row, ids in enumerate(program_ids):
        count, inside = 0, False
        for j, token in enumerate(ids):
            if token == start:
                count, inside = count + 1, True
            elif token in (sep, 0):  # the option's program, or padding, begins
                inside = False
            if inside:
                spans[row, j] = count
            if token == stop:
                inside = False
    return spans


class QAHead(nn.Module):
    """(clip latents (C, N, D), clip of each row (B,), program ids (B, L), spans (B, L)) ->
    logits (B,).

    Program-structured reads: each object reference of question + option ("objects red
    filter_color metal filter_material unique") reads the clip's tokens with attention weights
    from the conjunction of its filters (sum over its tokens of log sigmoid(filter . key)), so
    the read binds to the tokens that match every attribute; the remaining tokens (the
    operation) read the clip the same way. An MLP answers from the operation's embedding, every
    read and, per pair of references, |a - b|, a * b and a + b (comparisons such as "A collides
    with B").
    """

    def __init__(self, embed_dim: int, vocab_size: int, references: int, width: int,
                 hidden: int, dropout: float):
        super().__init__()
        self.references = references
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.filters = nn.Embedding(vocab_size, width, padding_idx=0)
        self.keys = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width))
        self.values = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width))
        pairs = references * (references - 1) // 2
        self.answer = nn.Sequential(
            nn.Linear(width * (references + 2 + 3 * pairs), hidden), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1))

    def forward(self, latents: torch.Tensor, clips: torch.Tensor, program_ids: torch.Tensor,
                spans: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of option rows: latents (C, N, D) of the clips, row clip index (B,),
        program token ids (B, L) (0 = padding) and their reference_spans (B, L)."""
        valid = (program_ids > 0).float()
        members = nn.functional.one_hot(spans, self.references + 1).float() * valid[..., None]
        keys, values = self.keys(latents)[clips], self.values(latents)[clips]      # B N W
        scale = keys.shape[-1] ** -0.5
        match = nn.functional.logsigmoid(
            torch.einsum("blw,bnw->bln", self.filters(program_ids), keys) * scale)  # B L N
        weights = torch.einsum("bls,bln->bsn", members, match).softmax(-1)           # B S+1 N
        reads = torch.einsum("bsn,bnw->bsw", weights, values)                         # B S+1 W
        present = members.amax(1)                                                     # B S+1
        reads = reads * present[..., None]
        operation = members[..., 0]
        embedded = (self.tokens(program_ids) * operation[..., None]).sum(1)
        embedded = embedded / operation.sum(1, keepdim=True).clamp(min=1)             # B W
        first, second = torch.triu_indices(self.references, self.references, 1) + 1
        a, b = reads[:, first], reads[:, second]                                      # B P W
        pairs = torch.cat([(a - b).abs(), a * b, a + b], -1)
        return self.answer(torch.cat([embedded, reads.flatten(1), pairs.flatten(1)], -1)
                           ).squeeze(-1)


def clip_grouped_batches(clips: torch.Tensor, batch_size: int,
                         generator: torch.Generator) -> list[torch.Tensor]:
    """Row batches in a random clip order, rows of one clip kept together (fewer projections)."""
    clip_rank = torch.randperm(int(clips.max()) + 1, generator=generator)[clips]
    jitter = torch.rand(len(clips), generator=generator)
    order = torch.argsort(clip_rank.double() + jitter.double() * 0.5)
    return list(order.split(batch_size))


def head_logits(head: QAHead, latents: torch.Tensor, clips: torch.Tensor, ids: torch.Tensor,
                spans: torch.Tensor) -> torch.Tensor:
    """Logits of option rows (clips (B,), ids and spans (B, L)), projecting each distinct clip
    once."""
    unique, inverse = torch.unique(clips, return_inverse=True)
    length = int((ids > 0).sum(1).max())
    return head(latents[unique], inverse, ids[:, :length], spans[:, :length])


@dataclass
class OptionRows:
    """The option rows of some questions as tensors: program ids and reference spans (R, L),
    clip index (R,), label (R,) and loss weight (R,)."""

    ids: torch.Tensor
    spans: torch.Tensor
    clips: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor


def type_balanced_weights(questions: list[Question], question_of_row: np.ndarray) -> np.ndarray:
    """Loss weight (R,) per option row: every question type carries the same total weight
    (mean 1), so the scarce types (predictive, explanatory) are not drowned by the common."""
    types = np.array([q.question_type for q in questions])[question_of_row]
    names, inverse, counts = np.unique(types, return_inverse=True, return_counts=True)
    return (len(types) / (len(names) * counts))[inverse].astype(np.float32)


def option_tensors(questions: list[Question], vocab: dict[str, int]) -> OptionRows:
    """One row per option of `questions` (question <sep> option program), as tensors."""
    ids, clips, labels, question_of_row = encode_options(questions, vocab)
    return OptionRows(torch.as_tensor(ids), torch.as_tensor(reference_spans(ids, vocab)),
                      torch.as_tensor(clips), torch.as_tensor(labels, dtype=torch.float32),
                      torch.as_tensor(type_balanced_weights(questions, question_of_row)))


def weighted_loss(head: QAHead, latents: torch.Tensor, rows: OptionRows,
                  batch: torch.Tensor) -> torch.Tensor:
    """Type-balanced BCE of the option rows `batch` (indices into rows)."""
    logits = head_logits(head, latents, rows.clips[batch], rows.ids[batch], rows.spans[batch])
    return nn.functional.binary_cross_entropy_with_logits(logits, rows.labels[batch],
                                                          rows.weights[batch])


@torch.no_grad()
def validation_loss(head: QAHead, latents: torch.Tensor, rows: OptionRows,
                    batch_size: int) -> float:
    """Mean type-balanced BCE over all of `rows` (the head in eval mode)."""
    head.eval()
    total = sum(float(weighted_loss(head, latents, rows, part)) * len(part)
                for part in torch.arange(len(rows.clips)).split(batch_size))
    head.train()
    return total / len(rows.clips)


def train_qa_head(latents: np.ndarray, rows: OptionRows, vocab_size: int, references: int,
                  cfg: QAHeadConfig, progress: bool = True,
                  val_rows: OptionRows | None = None) -> QAHead:
    """Fit a QAHead by type-balanced BCE on option rows; latents (C, N, D) indexed by
    rows.clips (and val_rows.clips). With val_rows: keep the epoch of lowest validation loss,
    stop after cfg.patience epochs without a lower one (head.epochs_run: epochs trained)."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    head = QAHead(latents.shape[-1], vocab_size, references, cfg.width, cfg.hidden, cfg.dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    latents_t = torch.as_tensor(latents, dtype=torch.float32)
    steps = cfg.epochs * -(-len(rows.clips) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    best, best_state, since = float("inf"), None, 0
    head.train()
    head.epochs_run = 0
    for _ in tqdm(range(cfg.epochs), desc="QA head", leave=False, disable=not progress):
        head.epochs_run += 1
        for batch in clip_grouped_batches(rows.clips, cfg.batch_size, generator):
            loss = weighted_loss(head, latents_t, rows, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        if val_rows is None:
            continue
        loss = validation_loss(head, latents_t, val_rows, cfg.batch_size)
        if loss < best:
            best, since = loss, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            since += 1
            if since >= cfg.patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    return head.eval()


@torch.no_grad()
def predict(head: QAHead, latents: np.ndarray, rows: OptionRows,
            batch_size: int = 256) -> np.ndarray:
    """Predicted correctness (R,) bool of each option row."""
    latents_t = torch.as_tensor(latents, dtype=torch.float32)
    logits = [head_logits(head, latents_t, rows.clips[part], rows.ids[part], rows.spans[part])
              for part in torch.arange(len(rows.ids)).split(batch_size)]
    return (torch.cat(logits) > 0).numpy() if logits else np.zeros(0, bool)


@contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one thread inside the block: the head's sums then add up in one order, so its
    results do not depend on the machine's core count or the run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_and_predict(job: tuple) -> tuple[np.ndarray, int]:
    """Train one subject's head on one thread, predict its test rows (one pool task): returns
    (predicted (R,) bool, epochs run); job = (train latents, test latents, rows, validation
    rows or None, test rows, vocab size, references, cfg)."""
    train_x, test_x, rows, val_rows, test_rows, vocab_size, references, cfg = job
    with single_thread():
        head = train_qa_head(train_x, rows, vocab_size, references, cfg, progress=False,
                             val_rows=val_rows)
        return predict(head, test_x, test_rows), head.epochs_run


def validation_split(questions: list[Question], fraction: float,
                     seed: int) -> tuple[list[Question], list[Question]]:
    """(fitted, validation) questions: a seeded `fraction` of the clips, all their questions,
    go to validation (no clip in both)."""
    clips = sorted({q.clip for q in questions})
    count = min(int(np.ceil(fraction * len(clips))), len(clips) - 1)  # >= 1 clip to fit
    held = set(np.random.default_rng(seed).permutation(clips)[:count].tolist())
    return ([q for q in questions if q.clip not in held],
            [q for q in questions if q.clip in held])


def check_question_counts(questions: list[Question], minimum: int, split: str) -> None:
    """DataError unless every question type has at least `minimum` questions in the split."""
    counts = {t: sum(q.question_type == t for q in questions) for t in QUESTION_TYPES}
    short = {t: n for t, n in counts.items() if n < minimum}
    if short:
        raise DataError(f"QA {split} split: too few questions of type "
                        + ", ".join(f"{t} ({n})" for t, n in short.items())
                        + f"; at least {minimum} each are needed (simulate more episodes)")


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (C, N, D) of both splits z-scored per feature with the training split's stats."""
    mean, std = train.mean((0, 1)), train.std((0, 1)) + 1e-6
    return (train - mean) / std, (test - mean) / std


def evaluate_qa(train: list[Question], test: list[Question], train_latents: dict[str, np.ndarray],
                test_latents: dict[str, np.ndarray], cfg: QAHeadConfig) -> dict:
    """Train one head per subject on `train`, score each on `test` (accuracy per type, CIs).

    train_latents / test_latents: subject -> clip tokens (C, N, D); every subject gets the same
    head, budget, seed and early-stopping clips (cfg.val_fraction of the training clips).
    Heads train in cfg.workers processes, one thread each, so the results are the same for any
    number of workers.
    """
    vocab = build_vocab(train)
    fitted, held = validation_split(train, cfg.val_fraction, cfg.seed)
    rows, test_rows = option_tensors(fitted, vocab), option_tensors(test, vocab)
    val_rows = option_tensors(held, vocab) if held else None
    references = int(max(rows.spans.max(), test_rows.spans.max(), 1))
    jobs = [(*standardize(train_latents[s], test_latents[s]), rows, val_rows, test_rows,
             len(vocab), references, cfg) for s in train_latents]
    with ordered_map(min(cfg.workers, len(jobs))) as heads_in_order:
        predicted = list(tqdm(heads_in_order(fit_and_predict, jobs), total=len(jobs),
                              desc="QA heads", leave=False))
    subjects = {s: accuracy_by_type(test, p, with_ci=True)
                for s, (p, _) in zip(train_latents, predicted)}
    answers = {s: p for s, (p, _) in zip(train_latents, predicted)}
    # the encoder against every control on the same resampled clips (when there is an encoder)
    paired = paired_qa_cis(test, answers, cfg.seed) if "encoder" in answers else {}
    return {"subjects": subjects, "paired_ci": paired,
            "epochs": {s: n for s, (_, n) in zip(train_latents, predicted)},
            "majority": majority_baseline(train, test), "random": random_baseline(test),
            "correct_share_train": correct_share(train), "correct_share_test": correct_share(test),
            "train_questions": len(train), "test_questions": len(test)}
