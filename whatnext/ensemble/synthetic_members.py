"""Generated member probabilities with known per-class strengths (tests and benchmarks).

Member i's logits for clip n are
``strength[i, y_n] * difficulty[n] * onehot(y_n) + shared[n] + own[i, n]``: a member's
accuracy on class c grows with ``strength[i, c]``; ``difficulty`` (>= 0, mean 1, spread
``difficulty_spread``) makes every member fail on the same hard clips, as checkpoints of
one pool do. ``shared`` is Gaussian noise added identically to every member's logits: it
correlates errors too, but linear contrasts of members cancel it exactly, which flatters
an unconstrained linear stacker; the benchmark uses ``difficulty`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticMembers:
    labels: np.ndarray  # int64 [n]
    probs: np.ndarray  # float32 [M, n, C], rows sum to 1


def generate_members(
    strength: np.ndarray,
    num_clips: int,
    seed: int,
    shared_noise: float = 1.0,
    own_noise: float = 1.0,
    difficulty_spread: float = 0.0,
    class_weights: np.ndarray | None = None,
) -> SyntheticMembers:
    """``strength`` float [M, C]; labels drawn from ``class_weights`` (uniform if None)."""
    rng = np.random.default_rng(seed)
    members, classes = strength.shape
    p = None if class_weights is None else np.asarray(class_weights, dtype=np.float64) / np.sum(class_weights)
    labels = rng.choice(classes, size=num_clips, p=p).astype(np.int64)
    logits = shared_noise * rng.standard_normal((1, num_clips, classes), dtype=np.float32)
    logits = logits + own_noise * rng.standard_normal((members, num_clips, classes), dtype=np.float32)
    difficulty = np.maximum(0.0, 1.0 + difficulty_spread * rng.standard_normal(num_clips)).astype(np.float32)
    logits[:, np.arange(num_clips), labels] += strength[:, labels].astype(np.float32) * difficulty
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    return SyntheticMembers(labels=labels, probs=probs.astype(np.float32))
