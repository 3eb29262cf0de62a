"""The challenge submission: ``video_name,predicted_class``, one row per test clip.

Header and naming follow the course starter kit: ``video_name`` is the clip's folder name
``video_<id>``, the ``video_id`` of ``DATA/test.csv`` as written there, with the ``video_`` prefix
added only when the CSV's id lacks it (``81`` and ``video_81`` both give ``video_81``), ``predicted_class`` an
integer class in 0..32. Rows follow ``test.csv`` order. The table is validated (every test
clip exactly once, nothing else, classes in range) before it is written, atomically.

CLI: ``python -m whatnext.inference.submission --probs CACHE.npz --data DATA --out submission.csv``
takes the arg-max of a test probability cache (a member's, or the stacker's ``--test-probs``).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from whatnext.data.class_table import load_class_table
from whatnext.data.split_csv import CLIP_PREFIX
from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels
from whatnext.runtime.atomic import atomic_open
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import ProbCacheError, read_prob_cache

HEADER = ("video_name", "predicted_class")


class SubmissionError(ValueError):
    """Predictions that do not make a valid submission."""


def video_name(clip_id: str) -> str:
    """The starter kit's clip name for a ``video_id``: ``video_<id>``, the id kept as test.csv writes it
    (a prefix already there is not doubled)."""
    return clip_id if clip_id.lower().startswith(CLIP_PREFIX) else f"{CLIP_PREFIX}{clip_id}"


def build_submission(test_ids: np.ndarray, clip_ids: np.ndarray, predicted: np.ndarray, num_classes: int) -> pd.DataFrame:
    """Validated submission rows in ``test_ids`` order from per-clip predictions (any order).

    ``clip_ids`` unicode [n] and ``predicted`` int [n] must cover every test clip exactly once.
    """
    clip_ids = np.asarray(clip_ids).astype(str)
    predicted = np.asarray(predicted)
    if clip_ids.shape != predicted.shape or clip_ids.ndim != 1:
        raise SubmissionError(f"{len(clip_ids)} clip ids for predictions of shape {predicted.shape}")
    unique, counts = np.unique(clip_ids, return_counts=True)
    if (counts > 1).any():
        raise SubmissionError(f"clip {str(unique[counts > 1][0])!r} is predicted more than once")
    missing = np.setdiff1d(test_ids, clip_ids)
    if len(missing):
        raise SubmissionError(f"{len(missing)} test clips have no prediction, e.g. clip {str(missing[0])!r}")
    extra = np.setdiff1d(clip_ids, test_ids)
    if len(extra):
        raise SubmissionError(f"{len(extra)} predicted clips are not in the test split, e.g. clip {str(extra[0])!r}")
    if not np.issubdtype(predicted.dtype, np.integer):
        raise SubmissionError(f"predicted classes must be integers, got {predicted.dtype}")
    out_of_range = (predicted < 0) | (predicted >= num_classes)
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise SubmissionError(f"clip {str(clip_ids[i])!r}: class {int(predicted[i])} is not in 0..{num_classes - 1}")
    position = {clip: i for i, clip in enumerate(clip_ids.tolist())}
    order = np.array([position[clip] for clip in np.asarray(test_ids).tolist()], dtype=np.int64)
    return pd.DataFrame({HEADER[0]: [video_name(c) for c in clip_ids[order]], HEADER[1]: predicted[order].astype(np.int64)})


def write_submission(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a table from :func:`build_submission` as CSV, atomically."""
    if tuple(frame.columns) != HEADER:
        raise SubmissionError(f"submission columns must be {HEADER}, got {tuple(frame.columns)}")
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)


@click.command()
@click.option("--probs", "probs_path", required=True, type=click.Path(dir_okay=False), help="Test probability cache (.npz).")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Data dir holding test.csv.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Submission CSV to write.")
def main(probs_path: str, data_dir: str, out_path: str) -> None:
    """Write the arg-max of a test probability cache as a validated submission CSV."""
    num_classes = load_class_table().num_classes
    try:
        test = read_clip_labels(data_dir, "test", num_classes)
        cache = read_prob_cache(probs_path, num_classes=num_classes)
        frame = build_submission(test.ids, cache.ids, cache.probs.argmax(axis=1), num_classes)
    except (ClipLabelsError, ProbCacheError) as err:
        raise BadInput(str(err)) from None
    except SubmissionError as err:
        raise BadInput(f"{probs_path}: {err}") from None
    write_submission(out_path, frame)
    click.echo(f"wrote {len(frame)} predictions to {out_path}")


if __name__ == "__main__":
    main()
