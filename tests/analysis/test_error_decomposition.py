"""Error decomposition: categories from the class table, files written, sources."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from click.testing import CliRunner

from whatnext.analysis.error_decomposition import decompose, main, pair_categories
from whatnext.data.class_table import load_class_table
from whatnext.runtime.prob_cache import write_prob_cache

TABLE = load_class_table()


def test_pairs_take_their_category_from_the_class_table():
    category = pair_categories(TABLE)
    assert category[(18, 19)] == category[(19, 18)] == "left/right mirror"
    assert category[(3, 32)] == category[(10, 0)] == "temporal inversion"
    assert category[(14, 11)] == category[(11, 14)] == "pretending vs real"
    assert (2, 5) not in category and (30, 30) not in category


def test_hand_made_errors_land_in_their_categories():
    labels = np.array([18, 0, 14, 2, 2, 5, 5])
    predicted = np.array([19, 10, 11, 4, 2, 5, 2])  # mirror, inversion, pretend, fine, right, right, fine
    table = decompose(labels, predicted, TABLE).set_index("category")
    assert table["errors"].to_dict() == {"left/right mirror": 1, "temporal inversion": 1, "pretending vs real": 1, "fine visual confusion": 2}
    np.testing.assert_allclose(table["share_of_errors"].sum(), 1.0)


def test_no_error_gives_zero_shares():
    labels = np.array([1, 2, 3])
    table = decompose(labels, labels, TABLE)
    assert table["errors"].sum() == 0 and (table["share_of_errors"] == 0).all()


def _val_dir(tmp_path, labels):
    data = tmp_path / "data"
    data.mkdir()
    ids = [str(1000 + i) for i in range(len(labels))]
    pd.DataFrame({"video_id": ids, "label": labels}).to_csv(data / "val.csv", index=False)
    return data, ids


def test_cli_writes_tables_figure_and_summary_for_a_cache(tmp_path):
    labels = np.array([18, 19, 0, 10, 5, 5])
    predicted = np.array([19, 19, 10, 10, 5, 7])
    data, ids = _val_dir(tmp_path, labels)
    probs = np.full((6, 33), 0.5 / 32, dtype=np.float32)
    probs[np.arange(6), predicted] = 0.5
    write_prob_cache(tmp_path / "p.npz", ids, probs, {"member": "x"})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["--probs", str(tmp_path / "p.npz"), "--data", str(data), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out / "decomposition.csv").set_index("category")["errors"].to_dict()["left/right mirror"] == 1
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == 0.5 and sum(summary["errors"].values()) == 3
    assert "| left/right mirror | 1 | 33.3% |" in (out / "decomposition.md").read_text()


def test_cli_decomposes_the_ensemble_out_of_fold(specialist_pool, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "ens"
    result = CliRunner().invoke(main, ["--cache-dir", str(specialist_pool["cache"]), "--members", str(specialist_pool["member_list"]),
                                       "--data", str(specialist_pool["data"]), "--out-dir", str(out), "--folds", "3", "--max-steps", "30"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members_used"] == ["m0", "m1", "m2"] and summary["num_clips"] == len(specialist_pool["labels"])


def test_cli_needs_exactly_one_source(tmp_path):
    data, _ = _val_dir(tmp_path, np.array([1, 2]))
    result = CliRunner().invoke(main, ["--data", str(data), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 2 and "exactly one source" in result.output
