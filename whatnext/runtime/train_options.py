"""The shared training flags as one value: what every training CLI passes to :class:`~whatnext.runtime.trainer.Trainer`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainOptions:
    """Everything the shared training flags say (see :mod:`whatnext.runtime.cli_options`).

    ``max_epochs`` bounds the run; with a stop score (see :class:`Trainer`), it may end after ``patience``
    epochs without improvement, once ``min_epochs`` are done. ``lr`` is the peak learning rate, reached after ``warmup_epochs`` (fractions allowed);
    times are in minutes; ``checkpoint_every`` counts optimiser steps; ``device`` is a torch
    device name or ``"auto"`` (CUDA when available); ``precision`` and ``compile`` choose the
    numeric precision and fast paths (:mod:`whatnext.runtime.precision`; not part of the result's
    fingerprint, so a retry may resume on another kind of card). ``micro_batch`` is the most clips one
    process runs forward and backward at once, gradients accumulating over a step's micro-batches (0: its
    whole share of the batch; see :mod:`whatnext.runtime.trainer`); not part of the fingerprint either, so
    a retry after a CUDA out-of-memory error resumes at a smaller one.
    """

    seed: int = 0
    max_epochs: int = 1
    min_epochs: int = 1
    patience: int | None = None
    batch_size: int = 8
    micro_batch: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.0
    threads: int | None = None
    workers: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    resume_dir: Path | None = None
    checkpoint_every: int = 100
    deadline: str | None = None
    time_budget_min: float | None = None
    safety_margin_min: float = 5.0
    log: Path | None = None

    RESULT_FIELDS = ("seed", "max_epochs", "min_epochs", "patience", "batch_size", "lr", "weight_decay", "warmup_epochs")

    def result_fields(self) -> dict:
        """The options that decide the trained weights (a resumed run must share them)."""
        return {name: getattr(self, name) for name in self.RESULT_FIELDS}
