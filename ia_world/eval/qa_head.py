"""A small QA head: attentive pooling of frozen clip latents, queried by a question program."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from timm.models.vision_transformer import Block
from torch import nn
from tqdm import tqdm

from ia_world.config import check_range
from ia_world.errors import ConfigError, DataError
from ia_world.eval.qa import (
    QUESTION_TYPES,
    Question,
    accuracy_by_type,
    build_vocab,
    correct_share,
    encode_options,
    majority_baseline,
    random_baseline,
)
from ia_world.models.attentive_pool import AttentivePool


@dataclass
class QAHeadConfig:
    """Width of the head and its training budget."""

    width: int = 64  # head width
    heads: int = 4  # attention heads
    epochs: int = 10  # training epochs
    batch_size: int = 128  # option rows per step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    seed: int = 0  # initialisation and batch order seed
    depth: int = 1  # transformer blocks over the program tokens and what they read
    min_questions: int = 50  # per type and split, else DataError (0: no check)

    def validate(self) -> None:
        """Check ranges."""
        check_range("width", self.width, 8, 4096)
        check_range("heads", self.heads, 1, 64)
        check_range("epochs", self.epochs, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("depth", self.depth, 1, 64)
        check_range("min_questions", self.min_questions, 0, 10**6)
        if self.width % self.heads:
            raise ConfigError(f"width={self.width} is not divisible by heads={self.heads}")


class QAHead(nn.Module):
    """(clip latents (C, N, D), clip of each row (B,), program ids (B, L)) -> logits (B,).

    Every program token queries the clip's tokens (cross-attention), then `depth` timm
    transformer blocks reason over the tokens and what they read (e.g. the two objects of a
    collision option), and the mean over valid tokens gives the logit.
    """

    def __init__(self, embed_dim: int, vocab_size: int, max_len: int, width: int, heads: int,
                 depth: int = 1):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.positions = nn.Parameter(torch.zeros(max_len, width))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.latents = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width))
        self.pool = AttentivePool(width, heads, learned_query=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio=2.0, qkv_bias=True)
                                    for _ in range(depth))
        self.classify = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 1))

    def forward(self, latents: torch.Tensor, clips: torch.Tensor,
                program_ids: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of option rows: latents (C, N, D) of the clips, row clip index (B,) and
        program token ids (B, L) (0 = padding). Each clip is projected once per call."""
        length = int((program_ids > 0).sum(1).max())
        program_ids = program_ids[:, :length]
        valid = program_ids > 0                                              # B L
        text = self.tokens(program_ids) + self.positions[:length]            # B L E
        keys = self.latents(latents)[clips]                                  # B N E
        x = text + self.pool(keys, text)                                     # B L E
        for block in self.blocks:
            x = block(x, attn_mask=valid[:, None, None, :])
        weights = valid.unsqueeze(-1).float()
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)          # B E
        return self.classify(pooled).squeeze(-1)


def clip_grouped_batches(clips: torch.Tensor, batch_size: int,
                         generator: torch.Generator) -> list[torch.Tensor]:
    """Row batches in a random clip order, rows of one clip kept together (fewer projections)."""
    clip_rank = torch.randperm(int(clips.max()) + 1, generator=generator)[clips]
    jitter = torch.rand(len(clips), generator=generator)
    order = torch.argsort(clip_rank.double() + jitter.double() * 0.5)
    return list(order.split(batch_size))


def head_logits(head: QAHead, latents: torch.Tensor, clips: torch.Tensor,
                ids: torch.Tensor) -> torch.Tensor:
    """Logits of option rows (clips (B,), ids (B, L)), projecting each distinct clip once."""
    unique, inverse = torch.unique(clips, return_inverse=True)
    return head(latents[unique], inverse, ids)


def train_qa_head(latents: np.ndarray, program_ids: np.ndarray, clips: np.ndarray,
                  labels: np.ndarray, vocab_size: int, cfg: QAHeadConfig) -> QAHead:
    """Fit a QAHead by BCE on option rows; latents (C, N, D) indexed by clips (R,)."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    head = QAHead(latents.shape[-1], vocab_size, program_ids.shape[1], cfg.width, cfg.heads,
                  cfg.depth)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    latents_t, ids_t = torch.as_tensor(latents, dtype=torch.float32), torch.as_tensor(program_ids)
    clips_t, labels_t = torch.as_tensor(clips), torch.as_tensor(labels, dtype=torch.float32)
    head.train()
    for _ in tqdm(range(cfg.epochs), desc="QA head", leave=False):
        for batch in clip_grouped_batches(clips_t, cfg.batch_size, generator):
            logits = head_logits(head, latents_t, clips_t[batch], ids_t[batch])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels_t[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head.eval()


@torch.no_grad()
def predict(head: QAHead, latents: np.ndarray, program_ids: np.ndarray, clips: np.ndarray,
            batch_size: int = 256) -> np.ndarray:
    """Predicted correctness (R,) bool of each option row."""
    latents_t = torch.as_tensor(latents, dtype=torch.float32)
    ids_t, clips_t = torch.as_tensor(program_ids), torch.as_tensor(clips)
    logits = [head_logits(head, latents_t, clips_t[rows], ids_t[rows])
              for rows in torch.arange(len(ids_t)).split(batch_size)]
    return (torch.cat(logits) > 0).numpy() if logits else np.zeros(0, bool)


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
    head, budget and seed.
    """
    vocab = build_vocab(train)
    ids, clips, labels, _ = encode_options(train, vocab)
    test_ids, test_clips, _, _ = encode_options(test, vocab)
    subjects = {}
    for subject in tqdm(list(train_latents), desc="QA heads", leave=False):
        train_x, test_x = standardize(train_latents[subject], test_latents[subject])
        head = train_qa_head(train_x, ids, clips, labels, len(vocab), cfg)
        predicted = predict(head, test_x, test_ids, test_clips)
        subjects[subject] = accuracy_by_type(test, predicted, with_ci=True)
    return {"subjects": subjects,
            "majority": majority_baseline(train, test), "random": random_baseline(test),
            "correct_share_train": correct_share(train), "correct_share_test": correct_share(test),
            "train_questions": len(train), "test_questions": len(test)}
