"""The clip ids (and validation labels) of a data dir's CSVs, read with pandas only.

``DATA/val.csv`` has columns ``video_id,label``; ``DATA/test.csv`` has ``video_id``
(docs/contracts.md). Ids are kept as strings in CSV order; they are the reference order
every probability cache is aligned to. The ensemble reads these files itself so that it
needs no image or model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


class ClipLabelsError(ValueError):
    """A split CSV that is missing or malformed."""


@dataclass(frozen=True)
class ClipLabels:
    """One split's clips: ``ids`` unicode [n] in CSV order, ``labels`` int64 [n] (-1 for test)."""

    ids: np.ndarray
    labels: np.ndarray


def read_clip_labels(data_dir: str | Path, split: str, num_classes: int) -> ClipLabels:
    """Read ``DATA/{split}.csv``; labels are required (0..num_classes-1) except for ``test``."""
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise ClipLabelsError(f"{path}: missing split CSV")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = ["video_id"] if split == "test" else ["video_id", "label"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ClipLabelsError(f"{path}: missing columns {missing} (found {list(frame.columns)})")
    if frame.empty:
        raise ClipLabelsError(f"{path}: no clips")
    ids = frame["video_id"].str.strip().to_numpy(dtype=str)
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        raise ClipLabelsError(f"{path}: duplicate video_id {str(ids[duplicated.to_numpy()][0])!r}")
    if split == "test":
        return ClipLabels(ids=ids, labels=np.full(len(ids), -1, dtype=np.int64))
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.isna() | (labels < 0) | (labels >= num_classes) | (labels % 1 != 0)
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise ClipLabelsError(f"{path}: clip {str(ids[row])!r} has label {frame['label'][row]!r}, not a class in 0..{num_classes - 1}")
    return ClipLabels(ids=ids, labels=labels.to_numpy(dtype=np.int64))
