"""The clips a finetuning run learns from: train or train+val (the sidecar twin), plus pseudo-labels.

``--fit train`` learns from the training split and scores the held-out validation split;
``--fit trainval`` (the twin) learns from both and scores nothing. ``--pseudo CSV`` adds every
test clip with its pseudo-label. ``--fold I/K`` (a fold member, :mod:`whatnext.finetune.folds`) leaves out
the labelled clips of that fold. :func:`carve_stop_split` sets a small, stratified share of the labelled
clips aside as the stop split, the signal of stopping by progress (never ``val`` under ``--fit train``). Items are decoded, unaugmented clips (lists of 4 frames, which
``whatnext.data.clip_batches.collate_clips`` copies into the batch) with their labels; the training
step's label-aware flip (:class:`whatnext.data.clip_transforms.ClipAugmenter`) swaps pseudo-labels exactly
as it swaps real ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from whatnext.finetune.folds import Fold, held_out_ids
from whatnext.finetune.pseudo import read_pseudo_labels

FITS = ("train", "trainval")


class LabelledClips(Dataset):
    """Clips drawn from several source datasets, each with its own label array.

    A source is any dataset with ``clip_ids`` and ``ds[i] -> (frames, label, clip_id)``
    (``whatnext.data.zip_dataset.ClipDataset`` opened without a transform); the label it
    returns is ignored in favour of ``labels``. Clips of the ``train`` and ``val`` parts whose id is in
    ``exclude`` (a fold) are left out. ``ds[i] -> (frames, label: int, clip_id: str)``.
    """

    def __init__(self, parts: Sequence[tuple[str, Dataset, np.ndarray]], exclude: frozenset[str] = frozenset()):
        self._index: list[tuple[Dataset, int]] = []
        clip_ids, labels, sources = [], [], []
        for name, source, part_labels in parts:
            part_labels = np.asarray(part_labels, dtype=np.int64)
            if len(part_labels) != len(source):
                raise ValueError(f"{name}: {len(part_labels)} labels for {len(source)} clips")
            if (part_labels < 0).any():
                raise ValueError(f"{name}: clip {source.clip_ids[int(np.argmax(part_labels < 0))]!r} has no label")
            keep = [i for i, clip_id in enumerate(source.clip_ids) if name == "pseudo" or clip_id not in exclude]
            self._index.extend((source, i) for i in keep)
            clip_ids.extend(source.clip_ids[i] for i in keep)
            labels.append(part_labels[keep])
            sources.extend([name] * len(keep))
        self.clip_ids: list[str] = clip_ids
        self.labels: np.ndarray = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self.sources: list[str] = sources  # split each clip comes from: "train", "val" or "pseudo"

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int):
        source, j = self._index[i]
        frames, _, clip_id = source[j]
        return frames, int(self.labels[i]), clip_id


def compose_training_set(
    splits: dict[str, Dataset],
    fit: str,
    pseudo_labels: np.ndarray | None = None,
    exclude: frozenset[str] = frozenset(),
) -> LabelledClips:
    """Training clips for ``fit`` from opened splits (``"train"``, ``"val"``, and ``"test"`` with pseudo-labels).

    ``pseudo_labels``: np.int64 [len(splits["test"])] aligned to the test clips, or None; ``exclude``: ids of
    labelled clips left out (a fold).
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    names = ["train"] if fit == "train" else ["train", "val"]
    parts = [(name, splits[name], splits[name].labels) for name in names]
    if pseudo_labels is not None:
        parts.append(("pseudo", splits["test"], pseudo_labels))
    return LabelledClips(parts, exclude)


def open_training_set(
    data_dir: str | Path,
    fit: str,
    num_classes: int,
    pseudo_csv: str | Path | None = None,
    fold: Fold | None = None,
) -> LabelledClips:
    """Open the splits of a data dir and compose the training set (pseudo CSV checked against test.csv),
    without the clips of ``fold`` if given."""
    from whatnext.data.zip_dataset import ClipDataset

    names = ["train"] + (["val"] if fit == "trainval" else []) + (["test"] if pseudo_csv is not None else [])
    splits = {name: ClipDataset(data_dir, name, stacked=False) for name in names}  # collate_clips stacks
    pseudo = None if pseudo_csv is None else read_pseudo_labels(pseudo_csv, list(splits["test"].clip_ids), num_classes)
    exclude = held_out_ids(data_dir, fold) if fold is not None else frozenset()
    return compose_training_set(splits, fit, pseudo, exclude)


def _clip_rank_key(clip_id: str) -> str:
    return hashlib.sha256(f"stop-split:{clip_id}".encode()).hexdigest()


def carve_stop_split(clip_ids: Sequence[str], labels: np.ndarray, eligible: np.ndarray, fraction: float) -> np.ndarray:
    """Indices (sorted) of the stop split: ``round(fraction x eligible clips)`` clips, stratified by label.

    A pure function of the clips' ids and labels (not of their order, the seed or the run), so every member
    and every pseudo-label round of one data dir holds out the same clips. Each class gives
    ``floor(fraction x n_c)`` clips, the remainder going to the classes with the largest fractional parts
    (ties: lower class id), never a class's last clip; within a class, clips are taken in the order of a
    hash of their id. ``eligible``: bool [n], the clips that may be held out (the labelled ones, not
    pseudo-labelled test clips).
    """
    labels, eligible = np.asarray(labels), np.asarray(eligible, dtype=bool)
    if not 0 <= fraction < 1:
        raise ValueError(f"stop fraction must be in [0, 1), got {fraction}")
    by_class = {int(c): sorted(np.flatnonzero(eligible & (labels == c)), key=lambda i: _clip_rank_key(clip_ids[i]))
                for c in np.unique(labels[eligible])}
    quota = {c: fraction * len(members) for c, members in by_class.items()}
    take = {c: min(int(q), len(by_class[c]) - 1) for c, q in quota.items()}
    spare = round(fraction * int(eligible.sum())) - sum(take.values())
    for c in sorted(by_class, key=lambda c: (-(quota[c] - int(quota[c])), c)):
        if spare <= 0:
            break
        if take[c] < len(by_class[c]) - 1:
            take[c], spare = take[c] + 1, spare - 1
    return np.array(sorted(i for c, members in by_class.items() for i in members[: take[c]]), dtype=np.int64)


class ViewedClips(Dataset):
    """Evaluation views of some clips of a :class:`LabelledClips`: ``ds[i] -> (views uint8 [V, T, C, H, W],
    label, clip_id)`` for ``indices[i]``, as :func:`whatnext.finetune.evaluation.predict_probs` reads them."""

    def __init__(self, clips: LabelledClips, indices: Sequence[int], views):
        self.clips, self.indices, self.views = clips, np.asarray(indices, dtype=np.int64), views
        self.labels = clips.labels[self.indices]
        self.clip_ids = [clips.clip_ids[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        frames, label, clip_id = self.clips[int(self.indices[i])]
        return self.views(torch.stack(list(frames))), label, clip_id
