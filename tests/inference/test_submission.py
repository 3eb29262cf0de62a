"""Submission rows: every test clip exactly once, validated before writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from whatnext.inference.submission import SubmissionError, build_submission, main
from whatnext.runtime.prob_cache import write_prob_cache

TEST_IDS = np.array(["7", "3", "11"])


def test_rows_follow_test_csv_order_with_kit_names():
    frame = build_submission(TEST_IDS, np.array(["11", "7", "3"]), np.array([2, 0, 1]), 33)
    assert list(frame.columns) == ["video_name", "predicted_class"]
    assert frame.values.tolist() == [["video_7", 0], ["video_3", 1], ["video_11", 2]]


def test_missing_test_clip_is_an_error_naming_it():
    with pytest.raises(SubmissionError, match="clip '3'"):
        build_submission(TEST_IDS, np.array(["7", "11"]), np.array([0, 1]), 33)


def test_clip_predicted_twice_is_an_error():
    with pytest.raises(SubmissionError, match="clip '7' is predicted more than once"):
        build_submission(TEST_IDS, np.array(["7", "3", "11", "7"]), np.array([0, 1, 2, 3]), 33)


def test_clip_outside_the_test_split_is_an_error():
    with pytest.raises(SubmissionError, match="clip '99'"):
        build_submission(TEST_IDS, np.array(["7", "3", "11", "99"]), np.array([0, 1, 2, 3]), 33)


def test_class_out_of_range_is_an_error():
    with pytest.raises(SubmissionError, match="class 33 is not in 0..32"):
        build_submission(TEST_IDS, TEST_IDS, np.array([0, 33, 1]), 33)


def _data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"video_id": TEST_IDS}).to_csv(data / "test.csv", index=False)
    return data


def test_cli_writes_the_arg_max_of_a_probability_cache(tmp_path):
    probs = np.full((3, 33), 0.01 / 32, dtype=np.float32)
    probs[[0, 1, 2], [5, 18, 19]] = 0.99
    write_prob_cache(tmp_path / "p.npz", ["3", "11", "7"], probs, {"member": "x"})
    result = CliRunner().invoke(main, ["--probs", str(tmp_path / "p.npz"), "--data", str(_data_dir(tmp_path)), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.csv").read_text().splitlines() == ["video_name,predicted_class", "video_7,19", "video_3,5", "video_11,18"]


def test_cli_refuses_a_cache_missing_a_test_clip_and_writes_nothing(tmp_path):
    write_prob_cache(tmp_path / "p.npz", ["3", "11"], np.full((2, 33), 1 / 33), {"member": "x"})
    result = CliRunner().invoke(main, ["--probs", str(tmp_path / "p.npz"), "--data", str(_data_dir(tmp_path)), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 2
    assert "p.npz" in result.output and "clip '7'" in result.output
    assert not (tmp_path / "s.csv").exists()
