"""Disk checks of a config: challenge data paths and member-list files."""

import pytest

from workflow_scripts.config_checks import challenge_data_files, existing_cache_files, read_member_ids
from workflow_scripts.member_table import ConfigError


def challenge_config(folder):
    return {"data": {"source": "challenge", "challenge": {"dir": str(folder)}}}


def make_challenge_dir(folder, skip=()):
    folder.mkdir(exist_ok=True)
    for name in ("frames.zip", "train.csv", "val.csv", "test.csv"):
        if name not in skip:
            (folder / name).write_text("x")
    return folder


def test_complete_challenge_dir_gives_every_file(tmp_path):
    files = challenge_data_files(challenge_config(make_challenge_dir(tmp_path / "d")))
    assert sorted(files) == ["frames", "test.csv", "train.csv", "val.csv"]


def test_missing_challenge_csv_is_named_with_its_key(tmp_path):
    folder = make_challenge_dir(tmp_path / "d", skip=("val.csv",))
    with pytest.raises(ConfigError, match=r"data.challenge.dir: missing .*val.csv"):
        challenge_data_files(challenge_config(folder))


def test_missing_challenge_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="data.challenge.dir: folder .*nowhere does not exist"):
        challenge_data_files(challenge_config(tmp_path / "nowhere"))


def test_extracted_frames_folder_is_accepted(tmp_path):
    folder = make_challenge_dir(tmp_path / "d", skip=("frames.zip",))
    (folder / "frames").mkdir()
    assert challenge_data_files(challenge_config(folder))["frames"].name == "frames"


def test_member_list_ignores_comments_and_blank_lines(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("# header\nscratch-a\n\ncascade-g1-attn-r0  # best\n")
    assert read_member_ids(path, "key") == ["scratch-a", "cascade-g1-attn-r0"]


def test_member_list_with_unknown_id_names_file_line_and_id(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("scratch-a\nbogus\n")
    with pytest.raises(ConfigError, match=r"key: .*m.txt:2: member id 'bogus' matches no finetune rule"):
        read_member_ids(path, "key")


def test_missing_cache_is_named(tmp_path):
    (tmp_path / "scratch-a").mkdir()
    (tmp_path / "scratch-a" / "train-val.npz").write_text("x")
    with pytest.raises(ConfigError, match=r"missing probability cache .*scratch-a/train-test.npz"):
        existing_cache_files(tmp_path, ["scratch-a"], [("train", "val"), ("train", "test")], "key")
