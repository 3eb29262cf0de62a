"""Validation errors split into interpretable categories (the seed's diagnostic, section 2).

An error (true class t, predicted p != t) falls in the first category that holds for the
pair, all pairs coming from the class table (:mod:`whatnext.data.class_table`):

1. ``left/right mirror``: t and p are mirror partners (18 <-> 19);
2. ``temporal inversion``: t and p are time-reversal partners (Opening/Closing, ...);
3. ``pretending vs real``: one is a "Pretending to ..." class and the other its real action;
4. ``fine visual confusion``: every other error.

``python -m whatnext.analysis.error_decomposition --data DATA --out-dir OUT`` and one source:
``--probs CACHE.npz`` (any validation cache, e.g. the stacker's ``--oof-probs``),
``--cache-dir DIR --member ID`` (that member's ``train-val`` cache), or
``--cache-dir DIR --members FILE`` (the ensemble: the stacker's out-of-fold predictions from a
nested CV fitted here, so every clip is predicted by a model that never saw its label).
Writes ``OUT/decomposition.csv`` and ``.md`` (errors and share per category),
``OUT/confused_pairs.csv`` (every confused (true, predicted) pair, its count and category),
``OUT/confusion.png`` (row-normalised confusion matrix) and ``OUT/summary.json``.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from whatnext.analysis.report_assets import confusion_matrix, plot_confusions
from whatnext.data.class_table import ClassTable, load_class_table
from whatnext.ensemble.batched_fit import FitConfig
from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels
from whatnext.ensemble.members import CacheRequest, MemberError, load_members, read_member_list
from whatnext.ensemble.nested_cv import DEFAULT_FOLDS, MIN_FOLDS, make_nested_folds
from whatnext.ensemble.scoring import out_of_fold
from whatnext.ensemble.stacker_model import class_major_log_probs, fit_stacker
from whatnext.runtime.atomic import atomic_open, write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import ProbCacheError, cache_path, read_prob_cache

CATEGORIES = ("left/right mirror", "temporal inversion", "pretending vs real", "fine visual confusion")


def pair_categories(table: ClassTable) -> dict[tuple[int, int], str]:
    """Category of every structured ordered pair (t, p), t != p; absent pairs are fine confusions."""
    category: dict[tuple[int, int], str] = {}
    groups = [(CATEGORIES[0], table.mirror_pairs), (CATEGORIES[1], table.reverse_pairs), (CATEGORIES[2], table.pretend_pairs)]
    for name, pairs in groups:
        for a, b in pairs:
            if a != b:
                category.setdefault((a, b), name)
                category.setdefault((b, a), name)
    return category


def confused_pairs(labels: np.ndarray, predicted: np.ndarray, table: ClassTable) -> pd.DataFrame:
    """Every (true, predicted) pair with errors: counts and category, most frequent first."""
    counts = confusion_matrix(labels, predicted, table.num_classes)
    np.fill_diagonal(counts, 0)
    true, pred = np.nonzero(counts)
    category = pair_categories(table)
    frame = pd.DataFrame({
        "true_class": true,
        "predicted_class": pred,
        "true_name": [table.names[t] for t in true],
        "predicted_name": [table.names[p] for p in pred],
        "errors": counts[true, pred],
        "category": [category.get((int(t), int(p)), CATEGORIES[3]) for t, p in zip(true, pred)],
    })
    return frame.sort_values(["errors", "true_class", "predicted_class"], ascending=[False, True, True], kind="stable").reset_index(drop=True)


def decompose(labels: np.ndarray, predicted: np.ndarray, table: ClassTable) -> pd.DataFrame:
    """Errors and their share per category (every category listed, zero included)."""
    pairs = confused_pairs(labels, predicted, table)
    errors = pairs.groupby("category")["errors"].sum().reindex(CATEGORIES, fill_value=0)
    total = int(errors.sum())
    return pd.DataFrame({
        "category": list(CATEGORIES),
        "errors": errors.to_numpy(dtype=np.int64),
        "share_of_errors": errors.to_numpy() / total if total else np.zeros(len(CATEGORIES)),
    })


def markdown(decomposition: pd.DataFrame, pairs: pd.DataFrame, accuracy: float, source: str, top: int = 10) -> str:
    lines = [f"# Error decomposition: {source}", "", f"Validation accuracy {accuracy:.4f}, {int(decomposition['errors'].sum())} errors.", "",
             "| Error type | Errors | Share |", "|---|---|---|"]
    lines += [f"| {r.category} | {r.errors} | {100 * r.share_of_errors:.1f}% |" for r in decomposition.itertuples()]
    lines += ["", f"Most frequent confusions (top {top}):", "", "| true | predicted | errors | category |", "|---|---|---|---|"]
    lines += [f"| {r.true_class} {r.true_name} | {r.predicted_class} {r.predicted_name} | {r.errors} | {r.category} |" for r in pairs.head(top).itertuples()]
    return "\n".join(lines) + "\n"


def ensemble_out_of_fold(cache_dir, members: list[str], val_ids: np.ndarray, labels: np.ndarray, folds: int, seed: int, max_steps: int):
    """The stacker's held-out predictions [n, C] for every validation clip, and the skipped members."""
    stack = load_members(cache_dir, members, [CacheRequest("train", "val", val_ids)], load_class_table().num_classes)
    nested = make_nested_folds(labels, folds, seed)
    log_probs = class_major_log_probs(stack.probs["train-val"])
    fit = fit_stacker(log_probs, labels, nested, FitConfig(max_steps=max_steps))
    return out_of_fold(fit.fold_probs(log_probs), nested.held_out()), stack.report()


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Data dir with val.csv.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Folder for the table, figure and summary.")
@click.option("--probs", "probs_path", type=click.Path(dir_okay=False), help="Source: a validation probability cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Probability cache root (with --member or --members).")
@click.option("--member", help="Source: this member's train-val cache.")
@click.option("--members", "members_file", type=click.Path(dir_okay=False), help="Source: the stacker over these members (out-of-fold).")
@click.option("--folds", "num_folds", default=DEFAULT_FOLDS, show_default=True, type=click.IntRange(MIN_FOLDS), help="Nested-CV folds (with --members).")
@click.option("--seed", default=0, show_default=True, type=int, help="Fold seed (with --members).")
@click.option("--max-steps", default=FitConfig.max_steps, show_default=True, type=click.IntRange(1), help="Stacker steps (with --members).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads.")
def main(data_dir, out_dir, probs_path, cache_dir, member, members_file, num_folds, seed, max_steps, threads) -> None:
    """Split validation errors into mirror, temporal inversion, pretending-vs-real and fine confusions."""
    torch.set_num_threads(threads)
    sources = [probs_path is not None, member is not None, members_file is not None]
    if sum(sources) != 1 or ((member or members_file) and cache_dir is None):
        raise click.UsageError("give exactly one source: --probs, --cache-dir with --member, or --cache-dir with --members")
    table = load_class_table()
    out = Path(out_dir)
    summary: dict = {}
    try:
        val = read_clip_labels(data_dir, "val", table.num_classes)
        if members_file:
            probs, summary = ensemble_out_of_fold(cache_dir, read_member_list(members_file), val.ids, val.labels, num_folds, seed, max_steps)
            source = f"stacker over {members_file} (out-of-fold)"
        else:
            path = probs_path or cache_path(cache_dir, member, "train", "val")
            probs = read_prob_cache(path, num_classes=table.num_classes, expected_ids=val.ids).probs
            source = f"member {member}" if member else str(path)
    except (MemberError, ClipLabelsError, ProbCacheError, ValueError) as err:
        raise BadInput(str(err)) from None
    predicted = probs.argmax(axis=1)
    accuracy = float((predicted == val.labels).mean())
    decomposition, pairs = decompose(val.labels, predicted, table), confused_pairs(val.labels, predicted, table)
    for name, frame in (("decomposition.csv", decomposition), ("confused_pairs.csv", pairs)):
        with atomic_open(out / name, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, float_format="%.4f")
    text = markdown(decomposition, pairs, accuracy, source)
    with atomic_open(out / "decomposition.md", "w", encoding="utf-8") as handle:
        handle.write(text)
    plot_confusions({f"{source}: val accuracy {accuracy:.3f}": confusion_matrix(val.labels, predicted, table.num_classes)}, out / "confusion.png")
    write_json(out / "summary.json", {"source": source, "accuracy": accuracy, "num_clips": len(predicted),
                                      "errors": decomposition.set_index("category")["errors"].to_dict(), **summary})
    click.echo(text, nl=False)


if __name__ == "__main__":
    main()
