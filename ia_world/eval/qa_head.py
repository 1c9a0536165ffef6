"""A small QA head: attentive pooling of frozen clip latents, queried by a question program."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ia_world.config import check_range
from ia_world.errors import ConfigError
from ia_world.eval.qa import (
    Question,
    accuracy_by_type,
    build_vocab,
    correct_share,
    encode_options,
    majority_baseline,
    random_baseline,
)


@dataclass
class QAHeadConfig:
    """Width of the head and its training budget."""

    width: int = 64  # head width
    heads: int = 4  # attention heads
    epochs: int = 30  # training epochs
    batch_size: int = 64  # questions per step
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    seed: int = 0  # initialisation and batch order seed

    def validate(self) -> None:
        """Check ranges."""
        check_range("width", self.width, 8, 4096)
        check_range("heads", self.heads, 1, 64)
        check_range("epochs", self.epochs, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_range("lr", self.lr, 0.0, 10.0)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        if self.width % self.heads:
            raise ConfigError(f"width={self.width} is not divisible by heads={self.heads}")


class QAHead(nn.Module):
    """(latents (B, N, D), program ids (B, L)) -> logit (B,) that the option is correct."""

    def __init__(self, embed_dim: int, vocab_size: int, max_len: int, width: int, heads: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.positions = nn.Parameter(torch.zeros(max_len, width))
        self.latents = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width))
        self.pool = nn.MultiheadAttention(width, heads, batch_first=True)
        self.classify = nn.Sequential(nn.Linear(3 * width, width), nn.GELU(),
                                      nn.Linear(width, 1))

    def forward(self, latents: torch.Tensor, program_ids: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for latents (B, N, D) and program token ids (B, L) (0 = padding)."""
        valid = (program_ids > 0).unsqueeze(-1).float()                      # B L 1
        text = (self.tokens(program_ids) + self.positions[: program_ids.shape[1]]) * valid
        query = text.sum(1) / valid.sum(1).clamp(min=1)                      # B E
        keys = self.latents(latents)                                         # B N E
        pooled, _ = self.pool(query.unsqueeze(1), keys, keys)                # B 1 E
        pooled = pooled.squeeze(1)
        return self.classify(torch.cat([pooled, query, pooled * query], -1)).squeeze(-1)


def train_qa_head(latents: np.ndarray, program_ids: np.ndarray, clips: np.ndarray,
                  labels: np.ndarray, vocab_size: int, cfg: QAHeadConfig) -> QAHead:
    """Fit a QAHead by BCE on option rows; latents (C, N, D) indexed by clips (R,)."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    head = QAHead(latents.shape[-1], vocab_size, program_ids.shape[1], cfg.width, cfg.heads)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    latents_t, ids_t = torch.as_tensor(latents, dtype=torch.float32), torch.as_tensor(program_ids)
    clips_t, labels_t = torch.as_tensor(clips), torch.as_tensor(labels, dtype=torch.float32)
    head.train()
    for _ in tqdm(range(cfg.epochs), desc="QA head", leave=False):
        for batch in torch.randperm(len(labels_t), generator=generator).split(cfg.batch_size):
            logits = head(latents_t[clips_t[batch]], ids_t[batch])
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
    logits = [head(latents_t[clips_t[rows]], ids_t[rows])
              for rows in torch.arange(len(ids_t)).split(batch_size)]
    return (torch.cat(logits) > 0).numpy() if logits else np.zeros(0, bool)


def evaluate_qa(train: list[Question], test: list[Question], train_latents: np.ndarray,
                test_latents: np.ndarray, cfg: QAHeadConfig) -> dict:
    """Train the head on `train`, score it on `test`; accuracy per type next to the baselines."""
    vocab = build_vocab(train)
    ids, clips, labels, _ = encode_options(train, vocab)
    head = train_qa_head(train_latents, ids, clips, labels, len(vocab), cfg)
    test_ids, test_clips, _, _ = encode_options(test, vocab)
    predicted = predict(head, test_latents, test_ids, test_clips)
    return {"head": accuracy_by_type(test, predicted),
            "majority": majority_baseline(train, test), "random": random_baseline(test),
            "correct_share_train": correct_share(train), "correct_share_test": correct_share(test),
            "train_questions": len(train), "test_questions": len(test)}
