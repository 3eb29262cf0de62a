"""The clips a finetuning run learns from: train or train+val (the sidecar twin), plus pseudo-labels.

``--fit train`` learns from the training split and scores the held-out validation split;
``--fit trainval`` (the twin) learns from both and scores nothing. ``--pseudo CSV`` adds every
test clip with its pseudo-label. Items are decoded, unaugmented clips (lists of 4 frames, which
``whatnext.data.clip_batches.collate_clips`` copies into the batch) with their labels; the training
step's label-aware flip (:class:`whatnext.data.clip_transforms.ClipAugmenter`) swaps pseudo-labels exactly
as it swaps real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from whatnext.finetune.pseudo import read_pseudo_labels

FITS = ("train", "trainval")


class LabelledClips(Dataset):
    """Clips drawn from several source datasets, each with its own label array.

    A source is any dataset with ``clip_ids`` and ``ds[i] -> (frames, label, clip_id)``
    (``whatnext.data.zip_dataset.ClipDataset`` opened without a transform); the label it
    returns is ignored in favour of ``labels``. ``ds[i] -> (frames, label: int, clip_id: str)``.
    """

    def __init__(self, parts: Sequence[tuple[str, Dataset, np.ndarray]]):
        self._index: list[tuple[Dataset, int]] = []
        clip_ids, labels, sources = [], [], []
        for name, source, part_labels in parts:
            part_labels = np.asarray(part_labels, dtype=np.int64)
            if len(part_labels) != len(source):
                raise ValueError(f"{name}: {len(part_labels)} labels for {len(source)} clips")
            if (part_labels < 0).any():
                raise ValueError(f"{name}: clip {source.clip_ids[int(np.argmax(part_labels < 0))]!r} has no label")
            self._index.extend((source, i) for i in range(len(source)))
            clip_ids.extend(source.clip_ids)
            labels.append(part_labels)
            sources.extend([name] * len(source))
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
) -> LabelledClips:
    """Training clips for ``fit`` from opened splits (``"train"``, ``"val"``, and ``"test"`` with pseudo-labels).

    ``pseudo_labels``: np.int64 [len(splits["test"])] aligned to the test clips, or None.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    names = ["train"] if fit == "train" else ["train", "val"]
    parts = [(name, splits[name], splits[name].labels) for name in names]
    if pseudo_labels is not None:
        parts.append(("pseudo", splits["test"], pseudo_labels))
    return LabelledClips(parts)


def open_training_set(
    data_dir: str | Path,
    fit: str,
    num_classes: int,
    pseudo_csv: str | Path | None = None,
) -> LabelledClips:
    """Open the splits of a data dir and compose the training set (pseudo CSV checked against test.csv)."""
    from whatnext.data.zip_dataset import ClipDataset

    names = ["train"] + (["val"] if fit == "trainval" else []) + (["test"] if pseudo_csv is not None else [])
    splits = {name: ClipDataset(data_dir, name, stacked=False) for name in names}  # collate_clips stacks
    pseudo = None if pseudo_csv is None else read_pseudo_labels(pseudo_csv, list(splits["test"].clip_ids), num_classes)
    return compose_training_set(splits, fit, pseudo)
