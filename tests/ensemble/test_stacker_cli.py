"""The stacker CLI end to end on a small pool on disk."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from tests.ensemble.conftest import write_member_list, write_pool
from whatnext.ensemble.stacker import main
from whatnext.runtime.prob_cache import read_prob_cache, write_prob_cache

FAST = ["--folds", "4", "--max-steps", "40", "--patience", "10"]


def run(args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args] + FAST, catch_exceptions=False, **kwargs)


def test_seed_interface_reads_the_data_dir_from_the_working_directory(specialist_pool, monkeypatch):
    monkeypatch.chdir(specialist_pool["data"])
    out = specialist_pool["root"] / "sub.csv"
    result = run(["--cache-dir", specialist_pool["cache"], "--members", specialist_pool["member_list"], "--out", out])
    assert result.exit_code == 0, result.output
    assert "3 members used, 0 skipped" in result.output
    assert out.with_suffix(".report.json").is_file() and out.with_suffix(".weights.npz").is_file()


def test_submission_covers_every_test_clip_once(specialist_pool):
    out = specialist_pool["root"] / "sub.csv"
    result = run(["--cache-dir", specialist_pool["cache"], "--members", specialist_pool["member_list"], "--data", specialist_pool["data"], "--out", out])
    assert result.exit_code == 0, result.output
    submission = pd.read_csv(out)
    test_ids = pd.read_csv(specialist_pool["data"] / "test.csv", dtype=str)["video_id"]
    assert list(submission.columns) == ["video_name", "predicted_class"]
    assert list(submission["video_name"]) == [f"video_{i}" for i in test_ids]
    assert submission["predicted_class"].between(0, 32).all()


def test_report_lists_the_skipped_member_and_why(specialist_pool):
    members = specialist_pool["root"] / "with_ghost.txt"
    members.write_text("m0\nghost\nm1\nm2\n")
    report = specialist_pool["root"] / "r.json"
    result = run(["--cache-dir", specialist_pool["cache"], "--members", members, "--data", specialist_pool["data"],
                  "--out", specialist_pool["root"] / "sub.csv", "--report", report])
    assert result.exit_code == 0, result.output
    content = json.loads(report.read_text())
    assert content["members_used"] == ["m0", "m1", "m2"]
    assert [(s["member"], s["reason"]) for s in content["members_skipped"]] == [("ghost", "unknown member")]
    assert "skipped member ghost (unknown member)" in result.output
    accuracy = content["held_out_accuracy"]
    assert len(accuracy["per_fold"]) == 4 and accuracy["mean"] == np.mean(accuracy["per_fold"])


def test_strict_fails_on_a_skip_with_exit_code_2(specialist_pool):
    members = specialist_pool["root"] / "with_ghost.txt"
    members.write_text("m0\nghost\n")
    out = specialist_pool["root"] / "sub.csv"
    result = run(["--cache-dir", specialist_pool["cache"], "--members", members, "--data", specialist_pool["data"], "--out", out, "--strict"])
    assert result.exit_code == 2
    assert "member 'ghost' is unusable (unknown member)" in result.output
    assert not out.exists()


def test_empty_member_list_fails_with_exit_code_2(specialist_pool):
    members = specialist_pool["root"] / "empty.txt"
    members.write_text("# nobody\n")
    result = run(["--cache-dir", specialist_pool["cache"], "--members", members, "--data", specialist_pool["data"], "--out", specialist_pool["root"] / "s.csv"])
    assert result.exit_code == 2
    assert "member list is empty" in result.output


def test_weights_and_probability_caches_are_written(specialist_pool):
    root = specialist_pool["root"]
    result = run(["--cache-dir", specialist_pool["cache"], "--members", specialist_pool["member_list"], "--data", specialist_pool["data"],
                  "--out", root / "sub.csv", "--weights", root / "w.npz", "--test-probs", root / "stacker" / "train-test.npz",
                  "--oof-probs", root / "stacker" / "train-val.npz"])
    assert result.exit_code == 0, result.output
    with np.load(root / "w.npz") as weights:
        assert weights["weights"].shape == (4, 3, 33)
        np.testing.assert_allclose(weights["weights"].sum(axis=1), 1.0, rtol=1e-5)
        assert list(weights["members"]) == ["m0", "m1", "m2"]
    test_probs = read_prob_cache(root / "stacker" / "train-test.npz", num_classes=33)
    submission = pd.read_csv(root / "sub.csv")
    np.testing.assert_array_equal(test_probs.probs.argmax(axis=1), submission["predicted_class"])
    oof = read_prob_cache(root / "stacker" / "train-val.npz", num_classes=33)
    assert oof.provenance["member"] == "stacker" and len(oof.ids) == len(specialist_pool["labels"])


def test_members_that_do_not_beat_the_baseline_are_flagged_and_one_above_is_not(tmp_path):
    strength = np.stack([np.full(33, 6.0, np.float32), np.full(33, 0.2, np.float32)])  # m0 strong, m1 weak
    data, caches, members, labels = write_pool(tmp_path, strength, num_val=240, num_test=40)
    val_ids = pd.read_csv(data / "val.csv", dtype=str)["video_id"].to_numpy()
    predicted = np.where(np.arange(len(labels)) % 2 == 0, labels, (labels + 1) % 33)  # right on every other clip
    baseline = tmp_path / "baseline" / "train-val.npz"
    write_prob_cache(baseline, val_ids[::-1], np.eye(33, dtype=np.float32)[predicted][::-1] * 0.9 + 0.1 / 33, {"member": "baseline"})
    report = tmp_path / "r.json"
    result = run(["--cache-dir", caches, "--members", write_member_list(tmp_path / "m.txt", members), "--data", data,
                  "--out", tmp_path / "sub.csv", "--report", report, "--baseline", baseline])
    assert result.exit_code == 0, result.output
    content = json.loads(report.read_text())
    floor = content["baseline"]["held_out"]["accuracy"]["mean"]
    assert abs(floor - 0.5) < 0.05  # read in the data dir's clip order although written reversed
    assert content["members_held_out"]["m0"]["accuracy"]["mean"] > floor > content["members_held_out"]["m1"]["accuracy"]["mean"]
    assert content["members_below_baseline"] == ["m1"]
    assert "member m1 does not beat the baseline" in result.output and "member m0 does not" not in result.output
    assert "baseline" not in content["held_out"]  # scored beside the aggregators, never one of them


def test_a_baseline_cache_of_other_clips_is_an_error_naming_it(specialist_pool):
    baseline = specialist_pool["root"] / "baseline" / "train-val.npz"
    write_prob_cache(baseline, ["1", "2"], np.full((2, 33), 1 / 33, np.float32), {"member": "baseline"})
    result = run(["--cache-dir", specialist_pool["cache"], "--members", specialist_pool["member_list"], "--data", specialist_pool["data"],
                  "--out", specialist_pool["root"] / "sub.csv", "--baseline", baseline])
    assert result.exit_code == 2 and f"{baseline}: ids are not the val clips" in result.output


def test_without_a_baseline_nothing_is_flagged(specialist_pool):
    report = specialist_pool["root"] / "r.json"
    result = run(["--cache-dir", specialist_pool["cache"], "--members", specialist_pool["member_list"], "--data", specialist_pool["data"],
                  "--out", specialist_pool["root"] / "sub.csv", "--report", report])
    assert result.exit_code == 0, result.output
    content = json.loads(report.read_text())
    assert content["baseline"] is None and content["members_below_baseline"] == []
    assert set(content["members_held_out"]) == {"m0", "m1", "m2"}
