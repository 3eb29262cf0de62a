"""The files the workflow's HTML report shows, from probability caches and the stacker's outputs.

``python -m whatnext.analysis.report_assets --cache-dir DIR --members FILE --data DATA
--stacker-report R.json --weights W.npz --oof-probs OOF.npz [--baseline B.npz] --out-dir OUT`` writes

- ``OUT/accuracies.csv``: every member's validation top-1 (its ``train-val`` cache), best first, with
  the pixel baseline's (``--baseline``: its ``train-val`` cache) as a row of its own and
  ``below_baseline`` true for each member whose held-out accuracy does not beat the baseline's;
- ``OUT/held_out.csv``: nested-CV held-out accuracy (mean, std over folds) of the stacker and its
  baselines (``best_member``: the best single member picked inside each fold), of the pixel
  baseline and of every member alone, on the same folds, from the report (``kind``: aggregator,
  baseline or member; ``below_baseline`` flags members);
- ``OUT/cascade_table.csv`` and ``.html``: validation top-1 by generation x head (see cascade_table);
- ``OUT/confusion.png``: row-normalised validation confusion matrices of the best member and of the
  stacker's out-of-fold predictions;
- ``OUT/stacker_weights.png``: the stacker's per-class member weights [M, C], mean over folds;
- ``OUT/pseudo_rounds.csv``: every guarded pseudo-label round member (from its ``train-val`` cache's
  provenance): stop-split top-1 of the round and of the weights it was compared with, the difference and its
  paired standard error, and ``fallback`` (the round lowered held-out accuracy beyond noise, so the member
  keeps the previous round's weights);
- ``OUT/summary.json``: the ensemble's, the best member's and the baseline's held-out accuracy,
  whether the ensemble beats the best member, the members below the baseline, and the members whose
  pseudo-label round fell back.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pandas as pd

from whatnext.analysis.cascade_table import cascade_table
from whatnext.data.class_table import load_class_table
from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels
from whatnext.ensemble.members import MemberError, read_member_list
from whatnext.runtime.atomic import atomic_open, atomic_path, write_json
from whatnext.runtime.prob_cache import ProbCacheError, cache_path, read_prob_cache


def cache_accuracy(path: str | Path, val_ids: np.ndarray, val_labels: np.ndarray) -> float:
    """Validation top-1 of a ``train-val`` cache (its ids must be the val clips, in order)."""
    cache = read_prob_cache(path, expected_ids=val_ids)
    return float((cache.probs.argmax(axis=1) == val_labels).mean())


def member_accuracies(cache_dir: str | Path, members: list[str], val_ids: np.ndarray, val_labels: np.ndarray) -> pd.Series:
    """Validation top-1 of each member's ``train-val`` cache, best first (ids must be the val clips)."""
    scores = {member: cache_accuracy(cache_path(cache_dir, member, "train", "val"), val_ids, val_labels) for member in members}
    return pd.Series(scores, name="val_top1").sort_values(ascending=False, kind="stable")


def accuracy_table(accuracies: pd.Series, baseline_accuracy: float | None, below_baseline: list[str]) -> pd.DataFrame:
    """Members' val top-1 with the baseline's as a row of its own, best first; ``below_baseline`` flags."""
    table = accuracies.to_frame()
    table["below_baseline"] = [member in below_baseline for member in table.index]
    if baseline_accuracy is not None:
        table.loc["baseline"] = [baseline_accuracy, False]
    return table.sort_values("val_top1", ascending=False, kind="stable")


GUARD_COLUMNS = ["member", "previous_member", "new_top1", "previous_top1", "difference", "se", "fallback", "kept_member"]


def pseudo_round_guards(cache_dir: str | Path, members: list[str]) -> pd.DataFrame:
    """One row per member whose ``train-val`` cache went through a pseudo-label round guard (GUARD_COLUMNS)."""
    rows = []
    for member in members:
        guard = read_prob_cache(cache_path(cache_dir, member, "train", "val")).provenance.get("pseudo_guard")
        if guard is not None:
            rows.append({"member": member, **{key: guard.get(key) for key in GUARD_COLUMNS[1:]}})
    return pd.DataFrame(rows, columns=GUARD_COLUMNS)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] counts: row = true class, column = predicted class."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (rows of an absent class stay 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_confusions(matrices: dict[str, np.ndarray], path: Path) -> None:
    """Side-by-side row-normalised confusion matrices, titled by the dict keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5), squeeze=False)
    for ax, (title, counts) in zip(axes[0], matrices.items()):
        image = ax.imshow(row_normalised(counts), vmin=0, vmax=1, cmap="viridis")
        ax.set(title=title, xlabel="predicted class", ylabel="true class")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="fraction of the true class")
    _save_figure(fig, path)


def plot_weights(weights: np.ndarray, members: list[str], path: Path) -> None:
    """Heatmap of member weights [M, C] (each class column sums to 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.22 * len(members)))
    image = ax.imshow(weights, aspect="auto", cmap="magma")
    ax.set(xlabel="class", title="stacker weight of each member per class (mean over folds)")
    ax.set_yticks(range(len(members)), members, fontsize=7)
    fig.colorbar(image, ax=ax, label="weight")
    _save_figure(fig, path)


def held_out_table(report: dict) -> pd.DataFrame:
    """Held-out accuracy (mean, std over folds) of every aggregator, the pixel baseline and every member
    alone in a stacker report; ``kind`` says which, ``below_baseline`` flags members."""
    rows = [(name, "aggregator", scores) for name, scores in report["held_out"].items()]
    if report.get("baseline"):
        rows.append((report["baseline"]["member"], "baseline", report["baseline"]["held_out"]))
    rows += [(name, "member", scores) for name, scores in report.get("members_held_out", {}).items()]
    below = set(report.get("members_below_baseline", []))
    return pd.DataFrame(
        [{"mean": s["accuracy"]["mean"], "std": s["accuracy"]["std"], "kind": kind, "below_baseline": name in below} for name, kind, s in rows],
        index=pd.Index([name for name, _, _ in rows]),
    )


def _write_csv(frame: pd.DataFrame | pd.Series, path: Path, **kwargs) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, float_format="%.4f", **kwargs)


@click.command()
@click.option("--cache-dir", required=True, type=click.Path(file_okay=False, exists=True), help="Probability cache root.")
@click.option("--members", "members_file", required=True, type=click.Path(dir_okay=False, exists=True), help="Member list of the stacker.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, exists=True), help="Data dir (val.csv).")
@click.option("--stacker-report", required=True, type=click.Path(dir_okay=False, exists=True), help="The stacker's --report JSON.")
@click.option("--weights", "weights_path", required=True, type=click.Path(dir_okay=False, exists=True), help="The stacker's --weights npz.")
@click.option("--oof-probs", required=True, type=click.Path(dir_okay=False, exists=True), help="The stacker's --oof-probs cache.")
@click.option("--baseline", "baseline_cache", type=click.Path(dir_okay=False, exists=True), help="The pixel baseline's train-val cache.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Folder to write the assets to.")
def main(cache_dir, members_file, data_dir, stacker_report, weights_path, oof_probs, baseline_cache, out_dir) -> None:
    """Write the report assets: accuracies, cascade table, confusion matrices, stacker weights."""
    out = Path(out_dir)
    num_classes = load_class_table().num_classes
    try:
        members = read_member_list(members_file)
        val = read_clip_labels(data_dir, "val", num_classes)
        accuracies = member_accuracies(cache_dir, members, val.ids, val.labels)
        baseline_accuracy = None if baseline_cache is None else cache_accuracy(baseline_cache, val.ids, val.labels)
        guards = pseudo_round_guards(cache_dir, members)
        stacked = read_prob_cache(oof_probs, num_classes=num_classes, expected_ids=val.ids)
    except (MemberError, ClipLabelsError, ProbCacheError) as err:
        raise click.ClickException(str(err)) from None
    report = json.loads(Path(stacker_report).read_text())
    if "held_out" not in report:
        raise click.ClickException(f"{stacker_report}: no 'held_out' scores (not a stacker report?)")
    with np.load(weights_path, allow_pickle=False) as saved:
        weights, weight_members = saved["weights"].mean(axis=0), [str(m) for m in saved["members"]]

    below_baseline = report.get("members_below_baseline", [])
    _write_csv(accuracy_table(accuracies, baseline_accuracy, below_baseline), out / "accuracies.csv", index_label="member")
    _write_csv(guards, out / "pseudo_rounds.csv", index=False)
    held_out = held_out_table(report)
    _write_csv(held_out, out / "held_out.csv", index_label="aggregator")
    table = cascade_table(accuracies.to_dict())
    _write_csv(table, out / "cascade_table.csv")
    with atomic_open(out / "cascade_table.html", "w", encoding="utf-8") as handle:
        handle.write(table.to_html(float_format="%.4f", na_rep="", border=0) if len(table) else "<p>no cascade member</p>")
    best = accuracies.index[0]
    best_probs = read_prob_cache(cache_path(cache_dir, best, "train", "val"), expected_ids=val.ids).probs
    plot_confusions(
        {
            f"best member {best} (val {accuracies.iloc[0]:.3f})": confusion_matrix(val.labels, best_probs.argmax(axis=1), num_classes),
            "stacker, out-of-fold": confusion_matrix(val.labels, stacked.probs.argmax(axis=1), num_classes),
        },
        out / "confusion.png",
    )
    plot_weights(weights, weight_members, out / "stacker_weights.png")
    ensemble, best_in_fold = held_out.loc[report["aggregator"], "mean"], held_out.loc["best_member", "mean"]
    summary = {
        "ensemble_held_out_accuracy": float(ensemble),
        "best_member_held_out_accuracy": float(best_in_fold),
        "best_member_val_accuracy": float(accuracies.iloc[0]),
        "best_member": best,
        "ensemble_beats_best_member": bool(ensemble > best_in_fold),
        "baseline_held_out_accuracy": report["baseline"]["held_out"]["accuracy"]["mean"] if report.get("baseline") else None,
        "baseline_val_accuracy": baseline_accuracy,
        "members_below_baseline": below_baseline,
        "num_members": len(members),
        "pseudo_round_fallbacks": [str(m) for m in guards.loc[guards["fallback"].astype(bool), "member"]],
    }
    write_json(out / "summary.json", summary)
    click.echo(json.dumps(summary))


if __name__ == "__main__":
    main()
