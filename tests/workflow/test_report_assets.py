"""The report assets CLI (whatnext.analysis.report_assets) on hand-made caches and stacker outputs."""

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from whatnext.analysis.report_assets import confusion_matrix, main, row_normalised
from whatnext.runtime.prob_cache import cache_path, write_prob_cache

NUM_CLASSES = 33
VAL_LABELS = np.array([0, 1, 2, 3, 18, 19])
VAL_IDS = [str(100 + i) for i in range(len(VAL_LABELS))]


def one_hot_probs(predicted):
    probs = np.full((len(predicted), NUM_CLASSES), 0.1 / (NUM_CLASSES - 1), dtype=np.float32)
    probs[np.arange(len(predicted)), predicted] = 0.9
    return probs


def make_inputs(tmp_path, ensemble_mean=0.8, best_mean=0.6):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"video_id": VAL_IDS, "label": VAL_LABELS}).to_csv(data / "val.csv", index=False)
    caches = tmp_path / "probs"
    right = {"cascade-g1-attn-r0": 3, "scratch-x": 5}  # clips predicted correctly (of 6)
    guards = {"cascade-g1-attn-r1": {"fallback": True, "kept_member": "cascade-g1-attn-r0", "previous_member": "cascade-g1-attn-r0",
                                     "new_top1": 0.2, "previous_top1": 0.5, "difference": -0.3, "se": 0.1}}
    for member, n_right in (right | {"cascade-g1-attn-r1": 3}).items():
        predicted = VAL_LABELS.copy()
        predicted[n_right:] = 5
        provenance = {"member": member} | ({"pseudo_guard": guards[member]} if member in guards else {})
        write_prob_cache(cache_path(caches, member, "train", "val"), VAL_IDS, one_hot_probs(predicted), provenance)
    members = tmp_path / "members.txt"
    members.write_text("# three\ncascade-g1-attn-r0\ncascade-g1-attn-r1\nscratch-x\n")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"aggregator": "stacker", "held_out": {
        "stacker": {"accuracy": {"mean": ensemble_mean, "std": 0.1}},
        "best_member": {"accuracy": {"mean": best_mean, "std": 0.1}},
    }, "baseline": {"member": "baseline", "held_out": {"accuracy": {"mean": 0.6, "std": 0.05}}},
        "members_held_out": {"cascade-g1-attn-r0": {"accuracy": {"mean": 0.5, "std": 0.1}},
                             "scratch-x": {"accuracy": {"mean": 0.8, "std": 0.1}}},
        "members_below_baseline": ["cascade-g1-attn-r0"]}))
    baseline = tmp_path / "baseline" / "train-val.npz"
    predicted = VAL_LABELS.copy()
    predicted[4:] = 5
    write_prob_cache(baseline, VAL_IDS, one_hot_probs(predicted), {"member": "baseline"})
    weights = tmp_path / "weights.npz"
    np.savez(weights, members=np.array(list(right)), weights=np.full((3, 2, NUM_CLASSES), 0.5))
    oof = tmp_path / "oof.npz"
    write_prob_cache(oof, VAL_IDS, one_hot_probs(VAL_LABELS), {"member": "stacker"})
    args = ["--cache-dir", caches, "--members", members, "--data", data, "--stacker-report", report,
            "--weights", weights, "--oof-probs", oof, "--baseline", baseline, "--out-dir", tmp_path / "out"]
    return [str(a) for a in args]


def test_member_accuracies_are_sorted_best_first(tmp_path):
    result = CliRunner().invoke(main, make_inputs(tmp_path))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "accuracies.csv")
    assert list(table["member"]) == ["scratch-x", "baseline", "cascade-g1-attn-r0", "cascade-g1-attn-r1"]
    assert np.allclose(table["val_top1"], [5 / 6, 4 / 6, 3 / 6, 3 / 6], atol=1e-4)
    assert list(table["below_baseline"]) == [False, False, True, False]


def test_held_out_table_puts_the_baseline_beside_the_members_and_the_stacker_and_flags(tmp_path):
    CliRunner().invoke(main, make_inputs(tmp_path))
    table = pd.read_csv(tmp_path / "out" / "held_out.csv", index_col=0)
    assert table.loc["baseline", "kind"] == "baseline" and table.loc["baseline", "mean"] == 0.6
    assert table.loc["stacker", "kind"] == "aggregator" and table.loc["scratch-x", "kind"] == "member"
    assert bool(table.loc["cascade-g1-attn-r0", "below_baseline"]) and not bool(table.loc["scratch-x", "below_baseline"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["baseline_held_out_accuracy"] == 0.6 and summary["members_below_baseline"] == ["cascade-g1-attn-r0"]
    assert abs(summary["baseline_val_accuracy"] - 4 / 6) < 1e-6


def test_summary_compares_the_ensemble_with_the_best_member_on_held_out_folds(tmp_path):
    CliRunner().invoke(main, make_inputs(tmp_path, ensemble_mean=0.55, best_mean=0.6))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ensemble_held_out_accuracy"] == 0.55
    assert summary["best_member"] == "scratch-x"
    assert summary["ensemble_beats_best_member"] is False


def test_a_pseudo_round_that_fell_back_is_flagged_in_the_table_and_the_summary(tmp_path):
    result = CliRunner().invoke(main, make_inputs(tmp_path))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "pseudo_rounds.csv")
    assert list(table["member"]) == ["cascade-g1-attn-r1"] and table["fallback"].tolist() == [True]
    assert table["kept_member"].tolist() == ["cascade-g1-attn-r0"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pseudo_round_fallbacks"] == ["cascade-g1-attn-r1"]


def test_figures_and_cascade_table_are_written(tmp_path):
    CliRunner().invoke(main, make_inputs(tmp_path))
    out = tmp_path / "out"
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "stacker_weights.png").stat().st_size > 1000
    assert "gen1" in (out / "cascade_table.html").read_text()


def test_report_without_held_out_scores_is_an_error_naming_the_file(tmp_path):
    args = make_inputs(tmp_path)
    (tmp_path / "report.json").write_text("{}")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "report.json: no 'held_out' scores" in result.output


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    counts = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert row_normalised(counts)[0].tolist() == [0.5, 0.5, 0.0]
