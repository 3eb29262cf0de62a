"""Pseudo-label CSVs (written by ``whatnext.ensemble.pseudo_label``), read and checked at the door.

Format: header ``video_id,label``, one row per test clip, ``label`` an integer class id in
0..num_classes-1. Every fault raises :class:`PseudoLabelError` naming the file, the row and
the clip.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

COLUMNS = ("video_id", "label")


class PseudoLabelError(ValueError):
    """A pseudo-label CSV that does not fit the test split it claims to label."""


def read_pseudo_labels(path: str | Path, test_ids: list[str], num_classes: int) -> np.ndarray:
    """Labels of the test clips, aligned to ``test_ids``: np.int64 [len(test_ids)].

    Raises PseudoLabelError for a missing file or column, a clip not in the test split, a
    duplicate clip, a label that is not an integer in 0..num_classes-1, or a test clip
    without a label.
    """
    path = Path(path)
    if not path.is_file():
        raise PseudoLabelError(f"{path}: pseudo-label file not found")
    position = {clip: i for i, clip in enumerate(test_ids)}
    labels = np.full(len(test_ids), -1, dtype=np.int64)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PseudoLabelError(f"{path}: missing columns {missing} (expected header {','.join(COLUMNS)})")
        for row_number, row in enumerate(reader, start=2):
            clip = (row["video_id"] or "").strip()
            where = f"{path}: line {row_number}: clip {clip!r}"
            if clip not in position:
                raise PseudoLabelError(f"{where} is not in the test split")
            try:
                label = int((row["label"] or "").strip())
            except ValueError:
                raise PseudoLabelError(f"{where}: label {row['label']!r} is not an integer") from None
            if not 0 <= label < num_classes:
                raise PseudoLabelError(f"{where}: label {label} is outside 0..{num_classes - 1}")
            if labels[position[clip]] != -1:
                raise PseudoLabelError(f"{where} is labelled twice")
            labels[position[clip]] = label
    unlabelled = np.flatnonzero(labels == -1)
    if len(unlabelled):
        raise PseudoLabelError(
            f"{path}: {len(unlabelled)} test clips have no pseudo-label, e.g. clip {test_ids[unlabelled[0]]!r}"
        )
    return labels
