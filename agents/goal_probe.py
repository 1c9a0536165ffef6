"""The goal probe: a class-balanced logistic regression on world-model rollouts (or on window 0
alone: the rollout ablation), and its AUROC diagnostics."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agents.world_model_net import WorldModel
from ia_world.eval.stats import auroc


def probe_features(model: WorldModel, context: torch.Tensor, horizon: int,
                   actions: torch.Tensor | None = None) -> torch.Tensor:
    """Goal-probe features of rollouts from context windows (B 1 P D) -> (B, horizon*P*D)."""
    with torch.no_grad():
        return model.rollout(context, horizon, actions).flatten(1)


def first_window_features(first: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
    """Window-0 probe features (B, P*D [+ A]): the first window, and the placement when the world
    model is conditioned on it (so the rollout ablation sees what the world model sees)."""
    features = first.flatten(1)
    return features if actions is None else torch.cat([features, actions], 1)


def train_probe(features: torch.Tensor, labels: torch.Tensor, steps: int,
                weight_decay: float, prefix: str = "probe.") -> dict[str, torch.Tensor]:
    """Standardised logistic regression (class-balanced) -> {prefix + mean, std, weight, bias}."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    positive = labels.float().mean().clamp(1e-3, 1 - 1e-3)
    pos_weight = (1 - positive) / positive
    optimizer = torch.optim.Adam([weight, bias], lr=0.01, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(x @ weight + bias, labels.float(),
                                                  pos_weight=pos_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {f"{prefix}mean": mean, f"{prefix}std": std, f"{prefix}weight": weight.detach(),
            f"{prefix}bias": bias.detach()}


def probe_logits(probe: dict[str, torch.Tensor], features: torch.Tensor,
                 prefix: str = "probe.") -> torch.Tensor:
    """Goal-probe logits (B,) of features (B, F)."""
    return ((features - probe[f"{prefix}mean"]) / probe[f"{prefix}std"]) \
        @ probe[f"{prefix}weight"] + probe[f"{prefix}bias"]


FIRST_WINDOW_PROBE = "probe0."  # tensors of the window-0 goal probe (no rollout)


def fit_goal_probes(model: WorldModel, windows: torch.Tensor, labels: torch.Tensor,
                    actions: torch.Tensor | None, cfg) -> dict[str, torch.Tensor]:
    """The goal probe on rollouts from window 0 of `windows` (E K P D) and the window-0 probe
    (the ablation's objective, prefix FIRST_WINDOW_PROBE) on the same episodes."""
    probe = train_probe(probe_features(model, windows[:, :1], windows.shape[1] - 1, actions),
                        labels, cfg.probe_steps, cfg.probe_weight_decay)
    probe.update(train_probe(first_window_features(windows[:, 0], actions), labels,
                             cfg.probe_steps, cfg.probe_weight_decay, prefix=FIRST_WINDOW_PROBE))
    return probe


def probe_diagnostics(model: WorldModel, probe: dict[str, torch.Tensor], windows: torch.Tensor,
                      labels: torch.Tensor, actions: torch.Tensor | None, fit: slice,
                      check: slice, cfg) -> dict[str, float]:
    """Goal-probe AUROC on `check` episodes, with a reference probe fit on `fit` episodes.

    `first_window`: a probe on window 0 alone (what the placement looks like, no dynamics);
    `true_future`: a probe on the encoded real future windows (a perfect world model's bound).
    """
    horizon = windows.shape[1] - 1
    features = {"rollout": probe_features(model, windows[:, :1], horizon, actions),
                "first_window": first_window_features(windows[:, 0], actions),
                "true_future": windows[:, 1:].flatten(1)}
    metrics = {}
    for name, feature in features.items():
        prefix = FIRST_WINDOW_PROBE if name == "first_window" else "probe."
        fitted = probe if name != "true_future" else train_probe(
            feature[fit], labels[fit], cfg.probe_steps, cfg.probe_weight_decay)
        scores = probe_logits(fitted, feature[check], prefix).numpy()
        metrics[f"probe_auroc_{name}"] = auroc(scores, labels[check].numpy())
    return metrics
