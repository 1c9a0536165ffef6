"""V-JEPA's attentive probe: one learnable query cross-attends frozen tokens, then a linear head.

Runs on any labelled clip dataset (items {"frames": uint8 (T, H, W, 3), "label": int}) and any
frozen encoder given as `encode(frames uint8 (B, T, H, W, 3)) -> tokens (B, N, D)`. The encoder is
frozen, so the tokens are computed once and the probe trains on them in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ia_world.checkpoint import encode_batches
from ia_world.config import check_range
from ia_world.models.attentive_pool import AttentivePool

Encode = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ProbeConfig:
    """Training of the attentive probe (AdamW, cosine learning rate, seeded)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    num_heads: int = 4
    seed: int = 0
    num_workers: int = 0

    def validate(self) -> None:
        """Raise ConfigError on out-of-range values."""
        check_range("probe.epochs", self.epochs, 1)
        check_range("probe.batch_size", self.batch_size, 1)
        check_range("probe.lr", self.lr, 0.0)
        check_range("probe.num_heads", self.num_heads, 1)
        check_range("probe.num_workers", self.num_workers, 0)


class AttentiveProbe(nn.Module):
    """Learned query + cross-attention block (attention and MLP, pre-norm) + linear classifier."""

    def __init__(self, embed_dim: int, num_classes: int, num_heads: int = 4, mlp_ratio: float = 4):
        super().__init__()
        self.pool = AttentivePool(embed_dim, num_heads, mlp_ratio=mlp_ratio)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, D) -> class logits (B, C)."""
        return self.head(self.pool(tokens)[:, 0])


def encode_dataset(encode: Encode, dataset: Dataset, batch_size: int,
                   num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen tokens (M, N, D) and labels (M,) of every clip of a labelled dataset."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    labels = []

    def frames():
        for batch in loader:
            labels.append(torch.as_tensor(batch["label"]))
            yield batch["frames"]

    tokens = encode_batches(encode, frames(), desc="encoding clips", total=len(loader))
    return tokens, torch.cat(labels).long()


def accuracy(probe: AttentiveProbe, tokens: torch.Tensor, labels: torch.Tensor,
             batch_size: int) -> float:
    """Top-1 accuracy of the probe on tokens (M, N, D) with labels (M,)."""
    probe.eval()
    with torch.no_grad():
        predicted = torch.cat([probe(chunk).argmax(-1) for chunk in tokens.split(batch_size)])
    return float((predicted == labels).float().mean())


def train_attentive_probe(encode: Encode, train_set: Dataset, test_set: Dataset,
                          num_classes: int, cfg: ProbeConfig | None = None) -> dict[str, float]:
    """Fit an attentive probe on train_set's frozen tokens; top-1 accuracy on both sets."""
    cfg = cfg or ProbeConfig()
    train_tokens, train_labels = encode_dataset(encode, train_set, cfg.batch_size,
                                                cfg.num_workers)
    test_tokens, test_labels = encode_dataset(encode, test_set, cfg.batch_size, cfg.num_workers)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    probe = AttentiveProbe(train_tokens.shape[-1], num_classes, cfg.num_heads)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(train_labels) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps_per_epoch)
    for _ in tqdm(range(cfg.epochs), desc="attentive probe", leave=False):
        probe.train()
        for batch in torch.randperm(len(train_labels), generator=generator).split(cfg.batch_size):
            loss = nn.functional.cross_entropy(probe(train_tokens[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return {"train_accuracy": accuracy(probe, train_tokens, train_labels, cfg.batch_size),
            "test_accuracy": accuracy(probe, test_tokens, test_labels, cfg.batch_size),
            "num_train": len(train_labels), "num_test": len(test_labels)}
