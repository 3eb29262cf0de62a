"""The baseline stage: multinomial logistic regression on small grey frames and frame differences.

``python -m whatnext.baseline.pixel_logreg --data DATA --out-dir OUT [--side 16] [--c 0.01]
[--folds 5 --seed 0]`` fits on the train split (features of :mod:`pixel_features`, standardised with
the train split's mean and std) and writes, like a member (member id: the name of ``OUT``):

- ``OUT/train-val.npz`` and ``OUT/train-test.npz``: probability caches (``whatnext.runtime.prob_cache``)
  the stacker and the report read like any member's; the baseline is never stacked;
- ``OUT/submission.csv``: its own test submission (arg-max of ``train-test``);
- ``OUT/report.json``: validation top-1, and the held-out accuracy on the stacker's nested folds of the
  validation clips (``--folds`` and ``--seed`` as the stacker's: the same chunks), the majority
  class's accuracy, features, C and fit seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from whatnext.baseline.pixel_features import split_features
from whatnext.data.class_table import load_class_table
from whatnext.data.zip_dataset import DataFormatError
from whatnext.ensemble.aggregators import held_out_scores, same_in_every_fold
from whatnext.ensemble.nested_cv import make_nested_folds
from whatnext.inference.submission import SubmissionError, build_submission, write_submission
from whatnext.runtime.atomic import write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import write_prob_cache

DEFAULT_C = 0.01


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, others: list[np.ndarray], num_classes: int,
                c: float = DEFAULT_C, threads: int = 1) -> list[np.ndarray]:
    """Fit on (train_x [n, d], train_y [n]) and return float32 [m, num_classes] probabilities for each of
    ``others`` (columns of classes absent from train are 0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    with threadpool_limits(threads):
        model.fit(train_x, train_y)
        predicted = [model.predict_proba(x) for x in others]
    classes = model[-1].classes_
    out = []
    for probs in predicted:
        full = np.zeros((len(probs), num_classes), dtype=np.float32)
        full[:, classes] = probs
        out.append(full / full.sum(axis=1, keepdims=True))
    return out


def run(data_dir: Path, out_dir: Path, side: int, c: float, num_folds: int, seed: int, threads: int) -> dict:
    """Everything the CLI does; returns the report."""
    num_classes = load_class_table().num_classes
    member = out_dir.name
    start = time.perf_counter()
    train_ids, train_y, train_x = split_features(data_dir, "train", side)
    val_ids, val_y, val_x = split_features(data_dir, "val", side)
    test_ids, _, test_x = split_features(data_dir, "test", side)
    features_seconds = time.perf_counter() - start
    start = time.perf_counter()
    val_probs, test_probs = fit_predict(train_x, train_y, [val_x, test_x], num_classes, c, threads)
    fit_seconds = time.perf_counter() - start
    folds = make_nested_folds(val_y, num_folds, seed)
    held_out = held_out_scores(same_in_every_fold(val_probs, folds), val_y, folds)
    submission = build_submission(np.asarray(test_ids), np.asarray(test_ids), test_probs.argmax(axis=1), num_classes)
    provenance = {"member": member, "fit": "train", "model": f"logistic regression (C={c}) on {side}x{side} grey frames + differences"}
    write_prob_cache(out_dir / "train-val.npz", val_ids, val_probs, {**provenance, "split": "val"})
    write_prob_cache(out_dir / "train-test.npz", test_ids, test_probs, {**provenance, "split": "test"})
    write_submission(out_dir / "submission.csv", submission)
    majority = int(np.bincount(train_y, minlength=num_classes).argmax())
    report = {
        "member": member,
        "model": provenance["model"],
        "num_features": int(train_x.shape[1]),
        "num_train_clips": len(train_ids),
        "val_accuracy": float((val_probs.argmax(axis=1) == val_y).mean()),
        "majority_val_accuracy": float((val_y == majority).mean()),
        "num_folds": num_folds,
        "seed": seed,
        "held_out": held_out,
        "features_seconds": features_seconds,
        "fit_seconds": fit_seconds,
    }
    write_json(out_dir / "report.json", report)
    return report


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Data dir (frames, train/val/test CSVs).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Folder of the caches, submission and report; its name is the member id.")
@click.option("--side", default=16, show_default=True, type=click.IntRange(4, 64), help="Side of the grey frames, px.")
@click.option("--c", "c", default=DEFAULT_C, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Inverse L2 strength of the logistic regression.")
@click.option("--folds", "num_folds", default=15, show_default=True, type=click.IntRange(3), help="Nested-CV folds of the validation clips (the stacker's).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fold assignment (the stacker's).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="BLAS threads.")
def main(data_dir, out_dir, side, c, num_folds, seed, threads) -> None:
    """Fit the pixel logistic-regression baseline on train; write its caches, submission and report."""
    try:
        report = run(Path(data_dir), Path(out_dir), side, c, num_folds, seed, threads)
    except (DataFormatError, SubmissionError, ValueError) as err:
        raise BadInput(str(err)) from None
    accuracy = report["held_out"]["accuracy"]
    click.echo(
        f"baseline {report['model']}: val top-1 {report['val_accuracy']:.4f} (majority {report['majority_val_accuracy']:.4f}); "
        f"held-out {accuracy['mean']:.4f} +- {accuracy['std']:.4f} over {report['num_folds']} folds; wrote {out_dir}",
        err=True,
    )


if __name__ == "__main__":
    main()
