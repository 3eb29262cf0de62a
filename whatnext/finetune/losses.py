"""Auxiliary self-supervision used while finetuning (seed README, "Auxiliary self-supervision").

* Pair direction (weight 0.3 in the recipe): pick two distinct frames of a clip, present
  them in a random order, and classify whether the order is forward (target 1) or
  reversed (target 0) from their encoder features.
* Multi-clip consistency (weight 0.2): symmetric Kullback-Leibler divergence between
  the class predictions of two clip-coherent augmentations of the same clip.

Everything here works on tensors; the finetune driver decides when to call it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FORWARD, REVERSED = 1, 0


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


def sample_frame_pairs(batch_size: int, num_frames: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw, per clip, two distinct frame indices in random order.

    Returns ``(first, second)``, each long [B] in 0..num_frames-1 with first != second;
    about half the pairs are forward (first < second), half reversed.
    """
    if num_frames < 2:
        raise ValueError(f"pair direction needs at least 2 frames per clip, got {num_frames}")
    first = torch.randint(0, num_frames, (batch_size,), generator=generator)
    offset = torch.randint(1, num_frames, (batch_size,), generator=generator)
    second = (first + offset) % num_frames
    return first, second


def pair_direction_targets(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """long [B]: 1 (FORWARD) where frame ``first`` precedes frame ``second``, else 0 (REVERSED)."""
    if (first == second).any():
        raise ValueError("pair direction: a pair must hold two different frames")
    return (first < second).long()


def gather_frame_pairs(frame_features: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the features of each clip's two frames.

    ``frame_features``: [B, T, D]; ``first``/``second``: long [B]. Returns two [B, D] tensors,
    in presentation order (the order the direction head sees them).
    """
    rows = torch.arange(frame_features.shape[0], device=frame_features.device)
    return frame_features[rows, first], frame_features[rows, second]


def pair_direction_loss(pair_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the direction head's [B, 2] logits against targets long [B] (mean, nats)."""
    return F.cross_entropy(pair_logits.float(), targets)
