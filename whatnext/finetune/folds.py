"""Fold partitions of the labelled clips, for fold ensembles (the ChaLearn seed's k-fold members).

A fold member trains on its pool of labelled clips minus one of ``k`` folds. The pool is ``train`` (the
seed's "train only" members) or ``trainval`` (train + val, the seed's "train + val" members). The fold a clip
belongs to is a pure function of the pool's clip ids and labels: within each class the clips are ordered by
the CRC-32 of their id (ties by id) and dealt round-robin to folds 0..k-1, so folds are class-stratified,
differ in size by at most one clip per class, and do not depend on any seed, file order or config.

What a fold member learns from, per fit (``--fit``, see :mod:`whatnext.finetune.training_sets`):
``train`` (its stacked model, validation always held out) = train clips outside the fold; ``trainval`` (its
sidecar twin) = pool "train": (train outside the fold) + all of val; pool "trainval": train + val outside
the fold.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POOLS = {"train": ("train",), "trainval": ("train", "val")}


@dataclass(frozen=True)
class Fold:
    """Fold ``index`` of ``count`` (0 <= index < count, count >= 2) of the clips of ``pool``."""

    index: int
    count: int
    pool: str = "train"

    def __post_init__(self):
        if self.count < 2 or not 0 <= self.index < self.count:
            raise ValueError(f"fold {self.index}/{self.count}: need 0 <= index < count and count >= 2")
        if self.pool not in POOLS:
            raise ValueError(f"fold pool must be one of {sorted(POOLS)}, got {self.pool!r}")

    @classmethod
    def parse(cls, text: str, pool: str = "train") -> "Fold":
        """``"i/k"`` -> Fold(i, k, pool); ``ValueError`` naming the text otherwise."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"fold {text!r}: expected INDEX/COUNT, e.g. 0/5") from None
        return cls(index, count, pool)


def fold_of(clip_ids: Sequence[str], labels: np.ndarray, count: int) -> np.ndarray:
    """Fold number [n] of each clip: per class, clips ordered by (crc32(id), id) and dealt round-robin."""
    labels = np.asarray(labels)
    folds = np.empty(len(clip_ids), dtype=np.int64)
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda i: (zlib.crc32(clip_ids[i].encode()), clip_ids[i]))
        folds[members] = np.arange(len(members)) % count
    return folds


def held_out_ids(data_dir: str | Path, fold: Fold) -> frozenset[str]:
    """Ids of the clips of ``fold`` (the labelled clips of its pool's splits that its member does not learn from)."""
    from whatnext.data.zip_dataset import ClipDataset

    ids, labels = [], []
    for split in POOLS[fold.pool]:
        clips = ClipDataset(data_dir, split, stacked=False)
        ids += clips.clip_ids
        labels.append(clips.labels)
    folds = fold_of(ids, np.concatenate(labels), fold.count)
    return frozenset(clip_id for clip_id, f in zip(ids, folds) if f == fold.index)
