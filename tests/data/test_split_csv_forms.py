"""Every CSV form the README lists, written as small files in that form and read by the clip reader,
the ensemble's reader and the submission."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.data.conftest import jpeg_bytes
from whatnext.data.class_table import load_class_table
from whatnext.data.split_csv import DataFormatError, LabelParser, clip_key
from whatnext.data.zip_dataset import ClipDataset
from whatnext.data.clip_labels import ClipLabelsError, read_clip_labels
from whatnext.inference.submission import main as submission_main
from whatnext.runtime.prob_cache import write_prob_cache

KIT_FOLDERS = {10: "010_Opening_something", 19: "019_Pulling_something_from_right_to_left"}
CLIPS = [(81, 10), (7, 19)]  # (clip number, class)


def kit_data_dir(root, folder=lambda n: f"video_{n}", train_csv="", test_csv=""):
    """A course-kit data dir: frames under the kit's class folders, CSVs as given."""
    root.mkdir(exist_ok=True)
    with zipfile.ZipFile(root / "frames.zip", "w") as archive:
        for number, label in CLIPS:
            for k in range(4):
                archive.writestr(f"train/{KIT_FOLDERS[label]}/{folder(number)}/frame_{k}.jpg", jpeg_bytes((20 * k, number, label)))
                archive.writestr(f"test/{folder(number)}/frame_{k}.jpg", jpeg_bytes((20 * k, number, 0)))
    (root / "train.csv").write_text(train_csv)
    (root / "val.csv").write_text(train_csv)
    (root / "test.csv").write_text(test_csv)
    return root


@pytest.mark.parametrize(
    ("ids", "labels"),
    [
        (["video_81", "video_7"], ["10", "19"]),  # the folder names as ids, class ids
        (["81", "7"], ["Opening something", "Pulling something from right to left"]),  # bare ids, class names
        (["0081", "007"], ["010_Opening_something", "019_Pulling_something_from_right_to_left"]),  # padded ids, kit folders
        (["video_81", "7"], ["opening_something", "19.0"]),  # mixed forms in one file
    ],
    ids=["prefixed-ids-class-ids", "bare-ids-class-names", "padded-ids-kit-folder-names", "mixed"],
)
def test_each_csv_form_reads_the_clips_with_their_labels(tmp_path, ids, labels):
    csv = "video_id,label\n" + "".join(f"{i},{lab}\n" for i, lab in zip(ids, labels))
    data = kit_data_dir(tmp_path / "data", train_csv=csv, test_csv="video_id\n" + "\n".join(ids) + "\n")
    train = ClipDataset(data, "train")
    assert train.clip_ids == ids  # as written
    assert train.labels.tolist() == [10, 19]
    assert train[0][0][0, 1].float().mean().item() == pytest.approx(81, abs=3)  # clip 81's frames
    val = read_clip_labels(data, "val", 33)
    assert val.ids.tolist() == ids and val.labels.tolist() == [10, 19]
    assert ClipDataset(data, "test").clip_ids == read_clip_labels(data, "test", 33).ids.tolist() == ids


def test_frame_folders_without_the_prefix_match_prefixed_ids(tmp_path):
    data = kit_data_dir(tmp_path / "data", folder=str, train_csv="video_id,label\nvideo_81,10\nvideo_7,19\n",
                        test_csv="video_id\nvideo_7\n")
    assert ClipDataset(data, "train").labels.tolist() == [10, 19]
    assert ClipDataset(data, "test").clip_ids == ["video_7"]


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("011_Opening_something", "folder number 11 is not class 10"),
        ("Opening everything", "neither a class id in 0..32 nor a class name"),
        ("33", "label 33 is outside 0..32"),
    ],
)
def test_a_label_that_names_no_class_is_an_error_naming_file_and_clip(tmp_path, label, message):
    data = kit_data_dir(tmp_path / "data", train_csv=f"video_id,label\nvideo_81,{label}\nvideo_7,19\n", test_csv="video_id\n7\n")
    with pytest.raises(DataFormatError, match=rf"train\.csv: clip video_81: .*{message}"):
        ClipDataset(data, "train")
    with pytest.raises(ClipLabelsError, match=rf"val\.csv: clip 'video_81': .*{message}"):
        read_clip_labels(data, "val", 33)


def test_two_ids_naming_one_clip_are_duplicates(tmp_path):
    data = kit_data_dir(tmp_path / "data", train_csv="video_id,label\n81,10\nvideo_81,10\n", test_csv="video_id\n7\n")
    with pytest.raises(DataFormatError, match=r"train\.csv: duplicate video_id \['81', 'video_81'\]"):
        ClipDataset(data, "train")
    with pytest.raises(ClipLabelsError, match=r"val\.csv: duplicate video_id"):
        read_clip_labels(data, "val", 33)


def test_clip_key_drops_the_prefix_and_leading_zeros_only():
    assert clip_key("video_081") == clip_key(" 81 ") == clip_key("VIDEO_81") == "81"
    assert clip_key("video_ab12") == "ab12" and clip_key("0") == "0"


@pytest.mark.parametrize(("test_ids", "names"), [(["video_81", "video_7"], ["video_81", "video_7"]), (["81", "7"], ["video_81", "video_7"])],
                         ids=["prefixed", "bare"])
def test_submission_keeps_the_test_csv_id_form_without_doubling_the_prefix(tmp_path, test_ids, names):
    data = kit_data_dir(tmp_path / "data", train_csv="video_id,label\n81,10\n", test_csv="video_id\n" + "\n".join(test_ids) + "\n")
    probs = np.full((2, 33), 0.01 / 32, dtype=np.float32)
    probs[[0, 1], [10, 19]] = 0.99
    write_prob_cache(tmp_path / "p.npz", test_ids, probs, {"member": "x"})
    result = CliRunner().invoke(submission_main, ["--probs", str(tmp_path / "p.npz"), "--data", str(data), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "s.csv", dtype=str)
    assert frame["video_name"].tolist() == names and frame["predicted_class"].tolist() == ["10", "19"]


def test_a_class_name_outside_a_smaller_class_range_is_refused():
    parse = LabelParser.from_table(load_class_table(), num_classes=5)
    assert parse("Folding something") == 3
    with pytest.raises(ValueError, match="label 10 is outside 0..4"):
        parse("010_Opening_something")
