"""Nested cross-validation splits: train / probe / held-out per fold, as boolean masks.

The labelled clips are dealt into ``K`` stratified chunks (each class shuffled with the
seed, then dealt round-robin, so every chunk has the class mix and size of the whole).
Fold ``k`` holds out chunk ``k`` for scoring, probes (early-stops) on chunk ``k + 1 mod K``
and fits on the other ``K - 2``. Every clip is held out in exactly one fold, and a fold's
held-out clips are used neither for fitting nor for selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_FOLDS = 3
DEFAULT_FOLDS = 15  # the seed's; every ensemble CLI's --folds default and the config schema's (configs set their own)


@dataclass(frozen=True)
class NestedFolds:
    """``chunk`` int64 [n]: the chunk each clip was dealt into; ``num_folds`` = number of chunks."""

    chunk: np.ndarray
    num_folds: int

    def held_out(self) -> np.ndarray:
        """bool [F, n]: fold f scores on chunk f."""
        return self.chunk[None, :] == np.arange(self.num_folds)[:, None]

    def probe(self) -> np.ndarray:
        """bool [F, n]: fold f early-stops on chunk (f + 1) mod F."""
        return self.chunk[None, :] == ((np.arange(self.num_folds) + 1) % self.num_folds)[:, None]

    def train(self) -> np.ndarray:
        """bool [F, n]: fold f fits on every other chunk."""
        return ~(self.held_out() | self.probe())


def make_nested_folds(labels: np.ndarray, num_folds: int, seed: int) -> NestedFolds:
    """Stratified chunks of the clips with ``labels`` (int [n]); deterministic in ``seed``."""
    labels = np.asarray(labels)
    if num_folds < MIN_FOLDS:
        raise ValueError(f"nested CV needs at least {MIN_FOLDS} folds (train, probe, held-out), got {num_folds}")
    if len(labels) < num_folds:
        raise ValueError(f"{len(labels)} labelled clips cannot fill {num_folds} folds")
    rng = np.random.default_rng(seed)
    # Shuffle, then stable-sort by class: classes stay contiguous, each in random order.
    shuffled = rng.permutation(len(labels))
    dealing_order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    chunk = np.empty(len(labels), dtype=np.int64)
    chunk[dealing_order] = np.arange(len(labels)) % num_folds
    return NestedFolds(chunk=chunk, num_folds=num_folds)
