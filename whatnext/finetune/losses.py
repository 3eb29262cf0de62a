"""Finetuning objectives: label-smoothed classification plus the two auxiliary self-supervised terms.

* Pair direction (weight 0.3 in the recipe): one ordered pair of distinct time steps per clip,
  presented in random order (:func:`whatnext.models.sample_frame_pairs`); the
  :class:`~whatnext.models.PairDirectionHead` predicts whether the order is forward.
* Multi-clip consistency (weight 0.2): symmetric Kullback-Leibler divergence between the class
  predictions of two clip-coherent augmentations of the same clip.
"""

from __future__ import annotations

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
