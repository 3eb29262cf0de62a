"""The clip ids (and validation labels) of a data dir's CSVs, read with pandas only.

``DATA/val.csv`` has columns ``video_id,label``; ``DATA/test.csv`` has ``video_id``, in any of the
forms of :mod:`whatnext.data.split_csv` (ids with or without ``video_``, labels as class ids, class
names or the kit's folder names). Ids are kept as strings, as written, in CSV order; they are the
reference order every probability cache is aligned to. The ensemble reads these files itself so that
it needs no image or model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whatnext.data.class_table import load_class_table
from whatnext.data.split_csv import DataFormatError, LabelParser, read_split_csv


class ClipLabelsError(ValueError):
    """A split CSV that is missing or malformed."""


@dataclass(frozen=True)
class ClipLabels:
    """One split's clips: ``ids`` unicode [n] in CSV order, ``labels`` int64 [n] (-1 for test)."""

    ids: np.ndarray
    labels: np.ndarray


def read_clip_labels(data_dir: str | Path, split: str, num_classes: int) -> ClipLabels:
    """Read ``DATA/{split}.csv``; labels are required (a class of 0..num_classes-1) except for ``test``."""
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise ClipLabelsError(f"{path}: missing split CSV")
    labelled = split != "test"
    try:
        ids, raw_labels = read_split_csv(path, labelled)
    except DataFormatError as err:
        raise ClipLabelsError(str(err)) from None
    if not ids:
        raise ClipLabelsError(f"{path}: no clips")
    if not labelled:
        return ClipLabels(ids=np.asarray(ids, dtype=str), labels=np.full(len(ids), -1, dtype=np.int64))
    parse_label = LabelParser.from_table(load_class_table(), num_classes)
    labels = np.empty(len(ids), dtype=np.int64)
    for row, (clip, raw) in enumerate(zip(ids, raw_labels)):
        try:
            labels[row] = parse_label(raw)
        except ValueError as err:
            raise ClipLabelsError(f"{path}: clip {clip!r}: {err}") from None
    return ClipLabels(ids=np.asarray(ids, dtype=str), labels=labels)
