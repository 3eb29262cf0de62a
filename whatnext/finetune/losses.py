"""Finetuning objectives: label-smoothed classification plus the two auxiliary self-supervised terms.

* Pair direction (weight 0.3 in the recipe): one ordered pair of distinct time steps per clip,
  presented in random order (:func:`whatnext.models.sample_frame_pairs`); the
  :class:`~whatnext.models.PairDirectionHead` predicts whether the order is forward.
* Multi-clip consistency (weight 0.2): symmetric Kullback-Leibler divergence between the class
  predictions of two clip-coherent augmentations of the same clip.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from whatnext.models import sample_frame_pairs

AUX_WEIGHTS = {"pair_direction": 0.3, "consistency": 0.2}


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """0.5 * (KL(p_a || p_b) + KL(p_b || p_a)), averaged over the batch, in nats.

    ``logits_a``, ``logits_b``: [B, K] unnormalised scores of the same clips under two views.
    Returns a scalar >= 0, exactly 0 when the two predicted distributions are identical.
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"symmetric_kl: shapes differ, {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    kl_ab = F.kl_div(log_b, log_a, reduction="batchmean", log_target=True)  # KL(p_a || p_b)
    kl_ba = F.kl_div(log_a, log_b, reduction="batchmean", log_target=True)  # KL(p_b || p_a)
    return 0.5 * (kl_ab + kl_ba)


def pair_direction_loss(head: nn.Module, step_features: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary cross-entropy (nats, batch mean) of ``head`` on one random ordered pair per clip.

    ``step_features``: [B, T', D] per-step encoder features (T' >= 2); ``head(first, second)`` -> logit [B],
    positive for "first precedes second". Randomness from ``generator`` (global torch RNG if None).
    """
    first, second, forward = sample_frame_pairs(step_features, generator)
    return F.binary_cross_entropy_with_logits(head(first, second).float(), forward.float())


LOSSES = ("ce", "focal", "balanced")


def balanced_weights(counts: np.ndarray) -> torch.Tensor:
    """Class-balanced weights [K] from training counts [K]: 1 / sqrt(count) over the classes present,
    scaled so they sum to the number of classes present (the brief's recipe); absent classes get 0 (no
    target of theirs is ever weighed)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = 1.0 / np.sqrt(counts[present])
    weights[present] *= present.sum() / weights[present].sum()
    return torch.as_tensor(weights, dtype=torch.float32)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): mean over the batch of (1 - p_t)^gamma x cross-entropy, in nats;
    gamma = 0 is plain cross-entropy. logits [B, K], labels long [B]."""
    ce = F.cross_entropy(logits.float(), labels, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


class HeadLoss(nn.Module):
    """One label head's loss: ``ce`` (label-smoothed cross-entropy), ``focal`` (gamma) or ``balanced``
    (cross-entropy weighted by :func:`balanced_weights` of the head's training counts)."""

    def __init__(self, kind: str, label_smoothing: float = 0.0, gamma: float = 2.0, counts: np.ndarray | None = None):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
        if kind == "balanced" and counts is None:
            raise ValueError("the balanced loss needs the training counts of the head's classes")
        self.kind, self.label_smoothing, self.gamma = kind, label_smoothing, gamma
        self.register_buffer("weight", balanced_weights(counts) if kind == "balanced" else torch.ones(0), persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "focal":
            return focal_loss(logits, labels, self.gamma)
        weight = self.weight if self.kind == "balanced" else None
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=self.label_smoothing)


class TaskLoss(nn.Module):
    """The classification loss of a task (:class:`whatnext.tasks.Task`): logits [B, num_outputs] and packed
    labels [B] -> the sum over heads of each head's :class:`HeadLoss` on its block and its decoded labels.
    One head with ``ce`` is exactly the label-smoothed cross-entropy of the whatnext recipe."""

    def __init__(self, task, kind: str = "ce", label_smoothing: float = 0.1, gamma: float = 2.0,
                 train_labels: np.ndarray | None = None):
        super().__init__()
        self.task = task
        decoded = None if train_labels is None else task.decode(np.asarray(train_labels, dtype=np.int64))
        self.heads = nn.ModuleDict({
            name: HeadLoss(kind, label_smoothing, gamma,
                           None if decoded is None else np.bincount(decoded[name], minlength=size))
            for name, size in task.heads})

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if len(self.task.heads) == 1:
            return self.heads[self.task.head_names[0]](logits, labels)
        blocks, truth = self.task.split(logits), self.task.decode(labels)
        return sum(self.heads[name](blocks[name], truth[name]) for name in self.task.head_names)
