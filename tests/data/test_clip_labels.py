"""Reading the data dir's split CSVs: ids as strings in CSV order, labels checked."""

from __future__ import annotations

import pytest

from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels


def test_ids_keep_csv_order_and_labels_are_integers(tmp_path):
    (tmp_path / "val.csv").write_text("video_id,label\n0042,3\n7,18\n")
    clips = read_clip_labels(tmp_path, "val", 33)
    assert clips.ids.tolist() == ["0042", "7"] and clips.labels.tolist() == [3, 18]


def test_test_split_needs_no_label(tmp_path):
    (tmp_path / "test.csv").write_text("video_id\n5\n6\n")
    assert read_clip_labels(tmp_path, "test", 33).labels.tolist() == [-1, -1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("video_id\n1\n", r"missing columns \['label'\]"),
        ("video_id,label\n1,3\n1,4\n", r"duplicate video_id \['1'\]"),
        ("video_id,label\n1,3\n2,33\n", "clip '2': label 33 is outside 0..32"),
        ("video_id,label\n1,x\n", "clip '1': label 'x' is neither a class id"),
    ],
    ids=["no-label-column", "duplicate-id", "label-out-of-range", "label-not-a-number"],
)
def test_bad_val_csv_is_an_error_naming_the_file(tmp_path, content, message):
    (tmp_path / "val.csv").write_text(content)
    with pytest.raises(ClipLabelsError, match=message) as err:
        read_clip_labels(tmp_path, "val", 33)
    assert "val.csv" in str(err.value)


def test_missing_csv_is_an_error(tmp_path):
    with pytest.raises(ClipLabelsError, match="missing split CSV"):
        read_clip_labels(tmp_path, "test", 33)
