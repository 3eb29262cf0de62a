"""Pair-direction auxiliary head: is frame a before frame b?

Used at finetuning (weight 0.3 in the seed) on the classifier's per-step features
``VideoClassifier.encode(x)`` / ``forward_with_features(x)`` [B, T', D]: draw one ordered pair per
clip with :func:`sample_frame_pairs`, predict its order with :class:`PairDirectionHead`, and train
with ``binary_cross_entropy_with_logits(logit, target)``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class PairDirectionHead(nn.Module):
    """(first [B, D], second [B, D]) -> logit [B]; positive means ``first`` comes before ``second``."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.mlp = nn.Sequential(nn.LayerNorm(2 * dim), nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([first, second], dim=-1)).squeeze(-1)


def sample_frame_pairs(features: torch.Tensor, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One random pair of distinct steps per clip, in random order.

    features [B, T', D] (T' >= 2) -> (first [B, D], second [B, D], target float [B]: 1 if first precedes second).
    """
    b, steps, _ = features.shape
    if steps < 2:
        raise ValueError(f"pair direction needs at least 2 time steps, got {steps}")
    pairs = torch.tensor(list(itertools.combinations(range(steps), 2)))  # [P, 2], i < j
    chosen = pairs[torch.randint(len(pairs), (b,), generator=generator)]
    forward = torch.rand(b, generator=generator) < 0.5
    first = torch.where(forward, chosen[:, 0], chosen[:, 1]).to(features.device)
    second = torch.where(forward, chosen[:, 1], chosen[:, 0]).to(features.device)
    rows = torch.arange(b, device=features.device)
    return features[rows, first], features[rows, second], forward.to(features.dtype).to(features.device)
