"""The pixel baseline: its features, and its stage's outputs on the test fixture's generated data."""

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from whatnext.baseline.pixel_features import grey_clip_features
from whatnext.baseline.pixel_logreg import main
from whatnext.ensemble.nested_cv import make_nested_folds
from whatnext.runtime.prob_cache import read_prob_cache


def test_features_are_grey_frames_then_their_differences():
    frames = np.zeros((1, 4, 3, 2, 2), np.uint8)
    for k in range(4):
        frames[0, k] = 51 * k  # grey level 0.2 k in every channel
    features = grey_clip_features(frames)
    assert features.shape == (1, 7 * 4) and features.dtype == np.float32
    assert np.allclose(features[0, :16], np.repeat([0.0, 0.2, 0.4, 0.6], 4), atol=1e-6)
    assert np.allclose(features[0, 16:], 0.2, atol=1e-6)


def test_grey_is_the_luma_of_the_colour():
    frames = np.zeros((1, 4, 3, 1, 1), np.uint8)
    frames[0, :, 1] = 255  # pure green
    assert np.allclose(grey_clip_features(frames)[0, :4], 0.587, atol=1e-6)


def test_stage_writes_caches_submission_and_report_and_beats_the_majority(tiny_data_dir, tmp_path):
    out = tmp_path / "baseline"
    result = CliRunner().invoke(main, ["--data", str(tiny_data_dir), "--out-dir", str(out), "--folds", "5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    val = pd.read_csv(tiny_data_dir / "val.csv", dtype={"video_id": str})
    test = pd.read_csv(tiny_data_dir / "test.csv", dtype={"video_id": str})
    val_cache, test_cache = read_prob_cache(out / "train-val.npz", 33), read_prob_cache(out / "train-test.npz", 33)
    assert val_cache.probs.shape == (len(val), 33) and list(val_cache.ids) == list(val.video_id)
    assert test_cache.probs.shape == (len(test), 33) and list(test_cache.ids) == list(test.video_id)
    assert val_cache.provenance["member"] == "baseline" and val_cache.provenance["fit"] == "train"
    assert val_cache.probs[:, 27].max() == 0.0  # no training clip of the empty class
    submission = pd.read_csv(out / "submission.csv", dtype=str)
    assert list(submission.video_name) == [f"video_{i}" for i in test.video_id]
    truth = pd.read_csv(tiny_data_dir / "synth_test_labels.csv", dtype=str).set_index("video_id").label.astype(int)
    test_accuracy = (submission.predicted_class.astype(int).to_numpy() == truth.loc[test.video_id].to_numpy()).mean()
    train = pd.read_csv(tiny_data_dir / "train.csv")
    majority = (truth == train.label.mode()[0]).mean()
    assert test_accuracy > 2 * majority, (test_accuracy, majority)
    report = json.loads((out / "report.json").read_text())
    assert report["num_features"] == 7 * 16 * 16 and report["val_accuracy"] > 2 * report["majority_val_accuracy"]
    folds = make_nested_folds(val.label.to_numpy(), 5, 3)  # the stacker's chunks for --folds 5 --seed 3
    correct = val_cache.probs.argmax(axis=1) == val.label.to_numpy()
    per_fold = [correct[folds.chunk == k].mean() for k in range(5)]
    assert np.allclose(report["held_out"]["accuracy"]["per_fold"], per_fold)


def test_a_data_dir_without_frames_exits_2_naming_the_file(tmp_path):
    (tmp_path / "train.csv").write_text("video_id,label\n1,0\n")
    result = CliRunner().invoke(main, ["--data", str(tmp_path), "--out-dir", str(tmp_path / "baseline")])
    assert result.exit_code == 2 and str(tmp_path) in result.output
