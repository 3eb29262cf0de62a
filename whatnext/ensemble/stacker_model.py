"""The per-class, log-space stacker and its nested-CV fit (the seed's aggregator).

For members i, clips n and classes c::

    W[i, c]      = softmax_i(R[i, c])
    logit[n, c]  = sum_i W[i, c] * log P[i, n, c] + b[c]

Each class has its own convex weighting of the members' log-probabilities, so a member
strong on a few classes can dominate there only. R = 0, b = 0 is the flat prior (the mean of
log-probabilities); the Tikhonov penalty ||R||^2 + ||b||^2 pulls the fit back toward it.
One (R, b) per nested-CV fold, fitted in one batch (:mod:`whatnext.ensemble.batched_fit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from whatnext.ensemble.batched_fit import BatchedFit, FitConfig, Params, fit_batched
from whatnext.ensemble.nested_cv import NestedFolds

PROB_FLOOR = 1e-8  # probabilities are clipped here before the log, so log P >= -18.4


def class_major_log_probs(probs: np.ndarray) -> torch.Tensor:
    """float [M, n, C] probabilities -> float32 [C, M, n] log-probabilities (floored)."""
    log_probs = torch.log(torch.as_tensor(probs, dtype=torch.float32).clamp_min(PROB_FLOOR))
    return log_probs.permute(2, 0, 1).contiguous()


def member_weights(R: torch.Tensor) -> torch.Tensor:
    """[F, M, C] raw weights -> [F, M, C] per-class convex weights over members."""
    return torch.softmax(R, dim=1)


def stacker_logits(params: Params, log_probs: torch.Tensor) -> torch.Tensor:
    """params R [F, M, C], b [F, C]; log_probs [C, M, n] -> logits [F, n, C]."""
    weights = member_weights(params["R"]).permute(2, 0, 1)  # [C, F, M]
    logits = torch.bmm(weights, log_probs)  # [C, F, n]
    return logits.permute(1, 2, 0).contiguous() + params["b"][:, None, :]


def flat_prior_params(folds: int, members: int, classes: int) -> Params:
    """R = 0, b = 0 for every fold: equal weights, i.e. the mean of log-probabilities."""
    return {"R": torch.zeros(folds, members, classes), "b": torch.zeros(folds, classes)}


def tikhonov(params: Params) -> torch.Tensor:
    """Squared distance of each fold's (R, b) from the flat prior: [F]."""
    return params["R"].pow(2).sum(dim=(1, 2)) + params["b"].pow(2).sum(dim=1)


@dataclass
class StackerFit:
    """The fitted stacker of every fold."""

    R: torch.Tensor  # [F, M, C]
    b: torch.Tensor  # [F, C]
    best_step: np.ndarray  # int [F]
    best_probe_loss: np.ndarray  # float [F]
    steps_run: int

    @property
    def params(self) -> Params:
        return {"R": self.R, "b": self.b}

    def weights(self) -> torch.Tensor:
        """[F, M, C] convex member weights per class."""
        return member_weights(self.R)

    @torch.no_grad()
    def fold_probs(self, log_probs: torch.Tensor) -> torch.Tensor:
        """log_probs [C, M, n] -> each fold's probabilities [F, n, C]."""
        return torch.softmax(stacker_logits(self.params, log_probs), dim=-1)

    def bagged_probs(self, log_probs: torch.Tensor) -> torch.Tensor:
        """The bag: mean over folds of the fold models' probabilities, [n, C]."""
        return self.fold_probs(log_probs).mean(dim=0)


def fit_stacker(log_probs: torch.Tensor, labels: np.ndarray, folds: NestedFolds, config: FitConfig) -> StackerFit:
    """Fit one stacker per fold on its train chunks, early-stopped on its probe chunk."""
    classes, members, _ = log_probs.shape
    fit: BatchedFit = fit_batched(
        flat_prior_params(folds.num_folds, members, classes),
        lambda params: stacker_logits(params, log_probs),
        tikhonov,
        labels,
        folds.train(),
        folds.probe(),
        config,
    )
    return StackerFit(
        R=fit.params["R"],
        b=fit.params["b"],
        best_step=fit.best_step,
        best_probe_loss=fit.best_probe_loss,
        steps_run=fit.steps_run,
    )
