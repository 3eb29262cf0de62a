"""Held-out scores of per-fold predictions: accuracy, NLL, ECE, and out-of-fold assembly."""

from __future__ import annotations

import numpy as np
import torch

ECE_BINS = 15


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def fold_accuracy(fold_probs, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Top-1 accuracy of each fold on its masked clips: probs [F, n, C], mask bool [F, n] -> [F]."""
    correct = _as_numpy(fold_probs).argmax(axis=-1) == np.asarray(labels)[None, :]
    return (correct & mask).sum(axis=1) / mask.sum(axis=1)


def fold_nll(fold_probs, labels: np.ndarray, mask: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Mean negative log-likelihood (nats) of each fold on its masked clips -> [F]."""
    probs = _as_numpy(fold_probs)
    picked = np.take_along_axis(probs, np.asarray(labels)[None, :, None].repeat(probs.shape[0], 0), axis=-1)[..., 0]
    nll = -np.log(np.maximum(picked.astype(np.float64), floor))
    return (nll * mask).sum(axis=1) / mask.sum(axis=1)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-1 ECE with equal-width confidence bins: probs [n, C], labels [n] -> float in [0, 1]."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(labels))


def fold_ece(fold_probs, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ECE of each fold on its masked clips -> [F]."""
    probs = _as_numpy(fold_probs)
    return np.array([expected_calibration_error(probs[f][mask[f]], labels[mask[f]]) for f in range(len(mask))])


def out_of_fold(fold_probs, held_out: np.ndarray) -> np.ndarray:
    """[n, C]: each clip's probabilities from the one fold that held it out."""
    probs = _as_numpy(fold_probs)
    counts = held_out.sum(axis=0)
    if not (counts == 1).all():
        raise ValueError("every clip must be held out by exactly one fold")
    return probs[held_out.argmax(axis=0), np.arange(held_out.shape[1])]


def summary(per_fold: np.ndarray) -> dict:
    """{"mean", "std" (over folds, ddof=1), "per_fold"} as plain floats."""
    per_fold = np.asarray(per_fold, dtype=np.float64)
    std = float(per_fold.std(ddof=1)) if len(per_fold) > 1 else 0.0
    return {"mean": float(per_fold.mean()), "std": std, "per_fold": [float(v) for v in per_fold]}
