import json

import numpy as np
import pytest
from click.testing import CliRunner

from tests.data.conftest import frame_colour
from whatnext.data.norm_stats import compute_norm_stats, load_norm_stats, main
from whatnext.data.zip_dataset import DataFormatError


def test_stats_are_the_channel_moments_of_the_training_frames(make_data_dir):
    data = make_data_dir(train=[(1, 0), (2, 5)], val=[(3, 4)])
    stats = compute_norm_stats(data)
    colours = np.array([frame_colour(c, k) for c in (1, 2) for k in range(4)], dtype=float) / 255
    assert np.allclose(stats["mean"], colours.mean(0), atol=2 / 255)  # JPEG rounding
    assert np.allclose(stats["std"], colours.std(0), atol=2 / 255)
    assert stats["num_clips"] == 2 and stats["split"] == "train"


def test_validation_clips_do_not_enter_the_stats(make_data_dir):
    with_val = compute_norm_stats(make_data_dir(train=[(1, 0)], val=[(9, 4)]))
    assert with_val["mean"] == pytest.approx(compute_norm_stats(make_data_dir(train=[(1, 0)]))["mean"])


def test_cli_writes_json_readable_by_load(make_data_dir, tmp_path):
    data = make_data_dir(train=[(1, 0), (2, 5)])
    out = tmp_path / "stats" / "norm_stats.json"
    result = CliRunner().invoke(main, ["--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    mean, std = load_norm_stats(out)
    assert mean == pytest.approx(json.loads(out.read_text())["mean"]) and len(std) == 3


def test_cli_reports_bad_data_as_a_usage_error(make_data_dir, tmp_path):
    data = make_data_dir(train=[(1, 0)], csv={"train": "video_id\n1\n"})
    result = CliRunner().invoke(main, ["--data", str(data), "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and "missing columns ['label']" in result.output


def test_load_rejects_a_zero_std(tmp_path):
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps({"mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}))
    with pytest.raises(DataFormatError, match="norm_stats.json: need 3 finite means and 3 positive stds"):
        load_norm_stats(path)


def test_tiny_data_dir_carries_its_stats(tiny_data_dir):
    mean, std = load_norm_stats(tiny_data_dir / "norm_stats.json")
    assert all(0.05 < m < 0.95 for m in mean) and all(0.02 < s < 0.5 for s in std)
