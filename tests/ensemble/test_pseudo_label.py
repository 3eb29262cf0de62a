"""Pseudo-labels: every test clip gets the strongest aggregator's arg-max, no threshold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from whatnext.ensemble.pseudo_label import main
from whatnext.runtime.prob_cache import write_prob_cache


def test_every_test_clip_gets_the_arg_max_of_the_given_cache(specialist_pool, tmp_path):
    test_ids = pd.read_csv(specialist_pool["data"] / "test.csv", dtype=str)["video_id"].to_numpy(dtype=str)
    probs = np.random.default_rng(0).dirichlet(np.full(33, 0.3), size=len(test_ids)).astype(np.float32)
    write_prob_cache(tmp_path / "p.npz", test_ids, probs, {"member": "stacker"})
    out = tmp_path / "pseudo.csv"
    result = CliRunner().invoke(main, ["--probs", str(tmp_path / "p.npz"), "--data", str(specialist_pool["data"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype={"video_id": str})
    assert list(frame.columns) == ["video_id", "label"]
    assert list(frame["video_id"]) == list(test_ids)
    np.testing.assert_array_equal(frame["label"], probs.argmax(axis=1))


def test_strongest_aggregator_is_chosen_on_held_out_accuracy(specialist_pool, tmp_path):
    out, report = tmp_path / "pseudo.csv", tmp_path / "r.json"
    result = CliRunner().invoke(main, ["--cache-dir", str(specialist_pool["cache"]), "--members", str(specialist_pool["member_list"]),
                                       "--data", str(specialist_pool["data"]), "--out", str(out), "--report", str(report), "--folds", "4", "--max-steps", "40"])
    assert result.exit_code == 0, result.output
    content = json.loads(report.read_text())
    accuracy = {name: scores["accuracy"]["mean"] for name, scores in content["held_out"].items()}
    assert content["aggregator"] == max(accuracy, key=accuracy.get) == "stacker"
    assert len(pd.read_csv(out)) == content["num_test_clips"] == 200


def test_source_must_be_exactly_one_of_probs_or_members(specialist_pool, tmp_path):
    result = CliRunner().invoke(main, ["--data", str(specialist_pool["data"]), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "either --probs, or both --cache-dir and --members" in result.output
