"""Ways to turn member probabilities into one prediction, scored on the same nested folds.

Each aggregator yields ``fold_probs`` float32 [F, n_val, C] (what fold f's model says about
every validation clip; only its held-out clips are scored) and ``test_probs`` [n_test, C]
(the bag over folds). Baselines here: the flat prior (mean of log-probabilities, nothing
fitted) and the best single member (chosen per fold on its train and probe clips); a single
member or the pixel baseline is scored on the same folds through ``same_in_every_fold``.
The stacker is :mod:`whatnext.ensemble.stacker_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from whatnext.ensemble.nested_cv import NestedFolds
from whatnext.ensemble.scoring import fold_accuracy, fold_ece, fold_nll, summary


@dataclass
class Aggregated:
    name: str
    fold_probs: np.ndarray  # float32 [F, n_val, C]
    test_probs: np.ndarray  # float32 [n_test, C], rows sum to 1

    def held_out_scores(self, labels: np.ndarray, folds: NestedFolds) -> dict:
        return held_out_scores(self.fold_probs, labels, folds)


def held_out_scores(fold_probs: np.ndarray, labels: np.ndarray, folds: NestedFolds) -> dict:
    """Accuracy, NLL (nats) and ECE of fold_probs [F, n_val, C] on each fold's held-out clips, mean and
    spread over folds."""
    held_out = folds.held_out()
    return {
        "accuracy": summary(fold_accuracy(fold_probs, labels, held_out)),
        "nll": summary(fold_nll(fold_probs, labels, held_out)),
        "ece": summary(fold_ece(fold_probs, labels, held_out)),
    }


def same_in_every_fold(val_probs: np.ndarray, folds: NestedFolds) -> np.ndarray:
    """[F, n_val, C] view of val_probs [n_val, C]: predictions fitted without the validation labels (a
    member alone, the pixel baseline), scored on the folds' held-out chunks like the aggregators."""
    return np.broadcast_to(val_probs, (folds.num_folds, *val_probs.shape))


def flat_prior(val_log_probs: torch.Tensor, test_log_probs: torch.Tensor, folds: NestedFolds) -> Aggregated:
    """Softmax of the mean of log-probabilities; log_probs [C, M, n]."""

    def probs(log_probs: torch.Tensor) -> np.ndarray:
        return torch.softmax(log_probs.mean(dim=1).T, dim=-1).numpy()

    return Aggregated("mean_log_probs", same_in_every_fold(probs(val_log_probs), folds), probs(test_log_probs))


def best_member(val_probs: np.ndarray, test_probs: np.ndarray, labels: np.ndarray, folds: NestedFolds) -> Aggregated:
    """Per fold, the member most accurate on the fold's train + probe clips; probs [M, n, C]."""
    correct = val_probs.argmax(axis=-1) == labels[None, :]  # [M, n]
    selection = ~folds.held_out()  # [F, n]
    accuracy = (selection[:, None, :] & correct[None, :, :]).sum(axis=-1)  # [F, M]
    chosen = accuracy.argmax(axis=1)
    return Aggregated("best_member", val_probs[chosen], test_probs[chosen].mean(axis=0))
