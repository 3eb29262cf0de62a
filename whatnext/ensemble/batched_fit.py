"""Full-batch fitting of one small model per fold, all folds in one batch dimension.

Every parameter tensor has a leading fold dimension F. One forward computes the logits of
every clip under every fold's parameters ([F, n, C]); the training loss of fold f averages
the cross-entropy over f's training clips only, the probe loss over f's probe clips only.
Because the summed loss separates over folds and AdamW is element-wise, the folds are
optimised exactly as F independent runs would be, at the cost of one batched op per step.

Early stopping, per fold: the probe score (top-1 error by default, or cross-entropy) is
measured before every step (step 0 = the initial parameters); a fold keeps the parameters
of its lowest probe score and stops updating that choice once ``patience`` steps pass
without strict improvement. Errors are counted in integers, so a step with as many probe
errors as the best one is a tie and never moves the choice (as in a per-fold loop). The loop ends when every fold has stopped or after
``max_steps`` updates. Selecting on the error rather than the cross-entropy matters for the
stacker: its weights sum to 1 per class, so it can only sharpen an under-confident average
by concentrating weight on fewer members, which lowers the NLL but can cost accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FitConfig:
    """AdamW learning rate, step budget, early-stopping patience (steps), penalty strength,
    the probe score selected on (``"error"``: 1 - top-1 accuracy, or ``"nll"``), and AdamW's
    epsilon. Adam divides each gradient by its running magnitude, so with the default 1e-8 a
    gradient that is zero up to float rounding (e.g. of a class with few clips) takes full-size
    steps in a direction set by the rounding; 1e-6 treats such gradients as zero."""

    lr: float = 0.2
    max_steps: int = 300
    patience: int = 30
    penalty: float = 1e-5
    select_on: str = "error"
    adam_eps: float = 1e-6


@dataclass
class BatchedFit:
    """Each fold's selected parameters and when they were selected."""

    params: Params  # tensors with leading dim F, detached
    best_step: np.ndarray  # int [F]: update count of the selected parameters
    best_probe_loss: np.ndarray  # float [F]: probe score (cross-entropy in nats, or error) at best_step
    steps_run: int  # updates performed by the batch


def row_weights(mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """bool [F, n] -> float32 [F, n] whose rows average over the masked clips."""
    mask = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    counts = mask.sum(dim=1, keepdim=True)
    if (counts == 0).any():
        raise ValueError("a fold has no clip in one of its splits")
    return mask / counts


def per_clip_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in nats of every clip under every fold: logits [F, n, C], labels [n] -> [F, n]."""
    target = labels.expand(logits.shape[0], -1).unsqueeze(-1)
    return torch.logsumexp(logits, dim=-1) - logits.gather(-1, target).squeeze(-1)


def probe_score(logits: torch.Tensor, nll: torch.Tensor, labels: torch.Tensor, probe_mask: torch.Tensor, select_on: str) -> torch.Tensor:
    """Per-fold score to minimise on the probe clips, float64 [F]: the mean NLL, or the top-1 error.

    logits [F, n, C], nll [F, n], labels [n], probe_mask bool [F, n]. The error is counted in integers
    and divided once (count / probe size), so equal error counts give equal scores exactly: a float32
    sum of copies of 1/n would not, and rounding would decide which of two tied steps is "better".
    """
    probe_size = probe_mask.sum(dim=1)
    if select_on == "nll":
        return (nll.double() * probe_mask).sum(dim=1) / probe_size
    if select_on == "error":
        errors = ((logits.argmax(dim=-1) != labels) & probe_mask).sum(dim=1)
        return errors.double() / probe_size
    raise ValueError(f"select_on must be 'nll' or 'error', got {select_on!r}")


def fit_batched(
    init_params: Params,
    logits_fn: Callable[[Params], torch.Tensor],
    penalty_fn: Callable[[Params], torch.Tensor],
    labels: np.ndarray,
    train_mask: np.ndarray,
    probe_mask: np.ndarray,
    config: FitConfig,
) -> BatchedFit:
    """Minimise, per fold, mean train cross-entropy + ``config.penalty * penalty_fn`` ([F]).

    ``logits_fn(params) -> [F, n, C]``; masks are bool [F, n]; labels int [n].
    """
    params = {name: value.detach().clone().requires_grad_(True) for name, value in init_params.items()}
    best = {name: value.detach().clone() for name, value in params.items()}
    train_w = row_weights(train_mask)
    probe_mask_t = torch.as_tensor(np.asarray(probe_mask), dtype=torch.bool)
    if not probe_mask_t.any(dim=1).all():
        raise ValueError("a fold has no clip in one of its splits")
    labels_t = torch.tensor(np.asarray(labels), dtype=torch.int64)
    folds = train_w.shape[0]
    best_loss = torch.full((folds,), float("inf"), dtype=torch.float64)
    best_step = torch.zeros(folds, dtype=torch.int64)
    active = torch.ones(folds, dtype=torch.bool)
    optimiser = torch.optim.AdamW(list(params.values()), lr=config.lr, eps=config.adam_eps, weight_decay=0.0)
    step = 0
    for step in range(config.max_steps + 1):
        logits = logits_fn(params)
        nll = per_clip_nll(logits, labels_t)
        with torch.no_grad():
            probe_loss = probe_score(logits, nll, labels_t, probe_mask_t, config.select_on)
            improved = active & (probe_loss < best_loss)
            for name, value in params.items():
                best[name][improved] = value[improved]
            best_loss = torch.where(improved, probe_loss, best_loss)
            best_step = torch.where(improved, step, best_step)
            active &= (step - best_step) < config.patience
        if step == config.max_steps or not active.any():
            break
        loss = (nll * train_w).sum() + config.penalty * penalty_fn(params).sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return BatchedFit(params=best, best_step=best_step.numpy(), best_probe_loss=best_loss.numpy(), steps_run=step)
