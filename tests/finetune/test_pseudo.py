"""Pseudo-label CSV reading: labels aligned to test.csv, every fault named."""

import numpy as np
import pytest

from whatnext.finetune.pseudo import PseudoLabelError, read_pseudo_labels

TEST_IDS = ["11", "12", "13"]


def write(tmp_path, text):
    path = tmp_path / "pseudo.csv"
    path.write_text(text)
    return path


def test_labels_are_aligned_to_test_order_whatever_the_row_order(tmp_path):
    path = write(tmp_path, "video_id,label\n13,5\n11,0\n12,32\n")
    assert read_pseudo_labels(path, TEST_IDS, 33).tolist() == [0, 32, 5]


def test_unknown_clip_is_named_with_the_file(tmp_path):
    path = write(tmp_path, "video_id,label\n11,0\n99,3\n12,1\n13,2\n")
    with pytest.raises(PseudoLabelError, match=r"pseudo\.csv: line 3: clip '99' is not in the test split"):
        read_pseudo_labels(path, TEST_IDS, 33)


@pytest.mark.parametrize("label", ["33", "-1"])
def test_out_of_range_label_is_named_with_clip(tmp_path, label):
    path = write(tmp_path, f"video_id,label\n11,0\n12,{label}\n13,2\n")
    with pytest.raises(PseudoLabelError, match=rf"clip '12': label {label} is outside 0..32"):
        read_pseudo_labels(path, TEST_IDS, 33)


def test_non_integer_label_is_an_error(tmp_path):
    path = write(tmp_path, "video_id,label\n11,zero\n12,1\n13,2\n")
    with pytest.raises(PseudoLabelError, match="clip '11': label 'zero' is not an integer"):
        read_pseudo_labels(path, TEST_IDS, 33)


def test_duplicate_clip_is_an_error(tmp_path):
    path = write(tmp_path, "video_id,label\n11,0\n11,1\n12,1\n13,2\n")
    with pytest.raises(PseudoLabelError, match="clip '11' is labelled twice"):
        read_pseudo_labels(path, TEST_IDS, 33)


def test_test_clip_without_label_is_an_error(tmp_path):
    path = write(tmp_path, "video_id,label\n11,0\n13,2\n")
    with pytest.raises(PseudoLabelError, match="1 test clips have no pseudo-label, e.g. clip '12'"):
        read_pseudo_labels(path, TEST_IDS, 33)


def test_missing_column_is_an_error(tmp_path):
    path = write(tmp_path, "video_id,predicted_class\n11,0\n")
    with pytest.raises(PseudoLabelError, match=r"missing columns \['label'\]"):
        read_pseudo_labels(path, TEST_IDS, 33)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(PseudoLabelError, match="not found"):
        read_pseudo_labels(tmp_path / "absent.csv", TEST_IDS, 33)


def test_result_is_int64(tmp_path):
    path = write(tmp_path, "video_id,label\n11,0\n12,1\n13,2\n")
    assert read_pseudo_labels(path, TEST_IDS, 33).dtype == np.int64
