"""Stopping by progress: a run's epoch count comes from a held-out score, between a minimum and a maximum.

The caller (a finetune track) scores the model after every epoch on a *stop split* carved from its own
training clips (never ``val``, which belongs to the stacker): ``score_fn(model) -> {"stop_loss": nats,
"stop_top1": fraction, ...}``. :class:`EarlyStopping` watches one of those numbers (``monitor``; lower is
better for a loss, higher for an accuracy), keeps a CPU copy of the best weights, and says when to stop:
after ``patience`` epochs without a strict improvement, once ``min_epochs`` epochs are done. With a
``chance`` level (the stop split's top-1 of always predicting the training majority), patience only starts
once the model has beaten it: until then the run has not begun to learn, and a loss that is flat near
ln(classes) for several epochs is not a plateau (on hard data a member's stop loss can sit there for 5-9
epochs before it learns). The first epoch above chance resets the best, so the weights kept are chosen
among epochs that learned; a run that never beats chance goes to ``max_epochs`` and keeps its lowest-loss
weights. The trainer
(:mod:`whatnext.runtime.trainer`) stops anyway at ``max_epochs`` and restores the best weights at the end:
with patience p the last weights are p epochs past the best and, by construction, no better on the split.

Its whole state (best score and epoch, epochs since the best, whether it stopped, the best weights) goes
into the trainer's resume state, so a run killed at any step resumes to the same decision and weights.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

MONITORS = {"loss": ("stop_loss", "min"), "top1": ("stop_top1", "max")}


class EarlyStopping:
    """Patience-based stopping on a held-out score, with the best weights kept.

    Args:
        score_fn: ``f(model) -> dict`` of held-out numbers (must include the monitored key); called once
            per epoch, it must not touch the global RNGs (the trainer's resume is exact only then).
        monitor: ``"loss"`` (``stop_loss``, lower is better) or ``"top1"`` (``stop_top1``, higher is better).
        patience: stop after this many epochs without improvement (None: never early; the best weights
            are still kept and restored).
        min_epochs: no stop before this many epochs are done.
        chance: top-1 (fraction) of the constant majority prediction on the stop split, or None (no gate):
            patience counts only from the first epoch whose ``stop_top1`` exceeds it.
    """

    def __init__(self, score_fn: Callable[[torch.nn.Module], dict], monitor: str = "loss", patience: int | None = None,
                 min_epochs: int = 1, chance: float | None = None):
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {sorted(MONITORS)}, got {monitor!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        self.score_fn = score_fn
        self.key, self.mode = MONITORS[monitor]
        self.patience = patience
        self.min_epochs = min_epochs
        self.chance = chance
        self.learned_epoch = None if chance is not None else -1  # first epoch above chance (-1: no gate)
        self.best_score = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.since_best = 0
        self.stopped = False
        self.best_weights: dict[str, torch.Tensor] | None = None

    def improves(self, score: float) -> bool:
        """True if ``score`` is strictly better than the best so far (NaN never is)."""
        return score < self.best_score if self.mode == "min" else score > self.best_score

    def observe(self, epoch: int, model: torch.nn.Module) -> dict:
        """Score ``model`` after ``epoch`` (0-based), update the best weights and the stop decision.

        Returns the scores plus ``stop_best_epoch`` for the epoch's metrics record."""
        scores = {key: float(value) for key, value in self.score_fn(model).items()}
        if self.key not in scores:
            raise KeyError(f"score function returned {sorted(scores)}, without the monitored {self.key!r}")
        learns_now = self.learned_epoch is None and scores["stop_top1"] > self.chance
        if learns_now:
            self.learned_epoch = epoch
        if learns_now or self.improves(scores[self.key]):
            self.best_score, self.best_epoch, self.since_best = scores[self.key], epoch, 0
            self.best_weights = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
        else:
            self.since_best += 1
        epochs_done = epoch + 1
        self.stopped = (self.patience is not None and self.learned_epoch is not None
                        and epochs_done >= self.min_epochs and self.since_best >= self.patience)
        return scores | {"stop_best_epoch": self.best_epoch}

    def restore_best(self, model: torch.nn.Module) -> None:
        """Load the best weights seen into ``model`` (no-op before the first epoch is scored)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights, strict=True)

    def summary(self) -> dict:
        """What the metrics JSON records about the stop: monitored key, best epoch and score, early or not."""
        return {"stop_monitor": self.key, "stop_best_epoch": self.best_epoch, "stop_best_score": self.best_score,
                "stopped_early": self.stopped, "patience": self.patience, "min_epochs": self.min_epochs,
                "stop_chance_top1": self.chance, "stop_learned_epoch": self.learned_epoch}

    def state_dict(self) -> dict:
        return {"key": self.key, "best_score": self.best_score, "best_epoch": self.best_epoch, "since_best": self.since_best,
                "stopped": self.stopped, "learned_epoch": self.learned_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        if state["key"] != self.key:
            raise ValueError(f"resume state monitors {state['key']!r}, this run {self.key!r}")
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.since_best, self.stopped = int(state["since_best"]), bool(state["stopped"])
        self.learned_epoch = state["learned_epoch"]
        self.best_weights = state["best_weights"]
