"""Pseudo-labels: a hard arg-max label for every test clip from the strongest aggregator.

No confidence threshold: every test clip gets the arg-max class (the seed's recipe). Output
is the CSV ``video_id,label`` the finetune stage consumes (one row per test clip, in
``test.csv`` order), written atomically, with an optional JSON report.

Two sources:
- ``--cache-dir DIR --members FILE``: fit the stacker with nested CV on the members'
  ``train-val`` caches and score it and its baselines (mean of log-probabilities, best
  single member) on the same held-out folds; the aggregator with the highest held-out
  accuracy labels the test clips (its bag over folds on the ``{--test-fit}-test`` caches);
- ``--probs CACHE.npz``: label from a given test probability cache (e.g. the stacker's
  ``--test-probs``).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from whatnext.data.class_table import load_class_table
from whatnext.ensemble.batched_fit import FitConfig
from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels
from whatnext.ensemble.members import MemberError, read_member_list
from whatnext.ensemble.nested_cv import DEFAULT_FOLDS, MIN_FOLDS
from whatnext.ensemble.stacker import load_stacking_inputs, run_stacker
from whatnext.runtime.atomic import atomic_open, write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import FITS, ProbCacheError, read_prob_cache


def pseudo_label_frame(test_ids: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """``video_id,label`` rows: the arg-max class of every test clip (probs [n, C] in ``test_ids`` order)."""
    if len(test_ids) != len(probs):
        raise ValueError(f"{len(test_ids)} test clips for {len(probs)} probability rows")
    return pd.DataFrame({"video_id": test_ids, "label": probs.argmax(axis=1).astype(np.int64)})


def write_pseudo_labels(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Data dir (val.csv, test.csv).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Pseudo-label CSV to write.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Probability cache root (with --members).")
@click.option("--members", "members_file", type=click.Path(dir_okay=False), help="Member list file (with --cache-dir).")
@click.option("--probs", "probs_path", type=click.Path(dir_okay=False), help="Or: label from this test probability cache.")
@click.option("--test-fit", type=click.Choice(FITS), default="train", show_default=True, help="Members' test caches to label from.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="JSON report (aggregator chosen, scores, skips).")
@click.option("--folds", "num_folds", default=DEFAULT_FOLDS, show_default=True, type=click.IntRange(MIN_FOLDS), help="Nested-CV folds.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fold assignment.")
@click.option("--max-steps", default=FitConfig.max_steps, show_default=True, type=click.IntRange(1), help="Stacker full-batch steps at most.")
@click.option("--strict", is_flag=True, help="Fail instead of skipping an unusable member.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads.")
def main(data_dir, out_path, cache_dir, members_file, probs_path, test_fit, report_path, num_folds, seed, max_steps, strict, threads) -> None:
    """Label every test clip with the arg-max of the strongest aggregator (no threshold)."""
    torch.set_num_threads(threads)
    if (probs_path is None) == (cache_dir is None or members_file is None):
        raise click.UsageError("give either --probs, or both --cache-dir and --members")
    num_classes = load_class_table().num_classes
    try:
        if probs_path:
            test_ids = read_clip_labels(data_dir, "test", num_classes).ids
            cache = read_prob_cache(probs_path, num_classes=num_classes, expected_ids=test_ids)
            frame = pseudo_label_frame(test_ids, cache.probs)
            report = {"source": str(probs_path), "provenance": cache.provenance}
        else:
            inputs = load_stacking_inputs(cache_dir, read_member_list(members_file), data_dir, test_fit=test_fit, strict=strict)
            for skip in inputs.stack.skipped:
                click.echo(f"skipped member {skip.member} ({skip.reason}): {skip.detail}", err=True)
            run = run_stacker(inputs, num_folds, seed, FitConfig(max_steps=max_steps))
            chosen = run.strongest()
            frame = pseudo_label_frame(inputs.test.ids, chosen.test_probs)
            report = {"aggregator": chosen.name, "held_out": run.scores, "test_fit": test_fit, **inputs.stack.report()}
    except (MemberError, ClipLabelsError, ProbCacheError, ValueError) as err:
        raise BadInput(str(err)) from None
    write_pseudo_labels(out_path, frame)
    if report_path:
        write_json(report_path, {**report, "num_test_clips": len(frame), "label_counts": frame["label"].value_counts().sort_index().to_dict()})
    click.echo(f"wrote {len(frame)} pseudo-labels to {out_path} ({report.get('aggregator', probs_path)})")


if __name__ == "__main__":
    main()
