"""track_a_scratch without --img-size takes the frame size from the first training clip: bad data there
is exit 2 naming the file, not a traceback."""

from __future__ import annotations

import shutil
import zipfile

from click.testing import CliRunner

from whatnext.finetune import track_a_scratch


def run_without_img_size(data, tmp_path):
    args = ["--data", data, "--arch", "conv3d_tiny", "--head", "attn", "--fit", "train", "--out", tmp_path / "m.pt",
            "--metrics", tmp_path / "m.json", "--epochs", "1", "--threads", "1"]
    return CliRunner().invoke(track_a_scratch.main, [str(a) for a in args], catch_exceptions=False)


def test_train_csv_without_its_label_column_exits_2_naming_it(micro_data_dir, tmp_path):
    data = shutil.copytree(micro_data_dir, tmp_path / "data")
    (data / "train.csv").write_text("clip,label\n1,2\n")
    result = run_without_img_size(data, tmp_path)
    assert result.exit_code == 2, result.output
    assert f"{data / 'train.csv'}: missing columns ['video_id']" in result.output


def test_corrupt_first_training_jpeg_exits_2_naming_the_member(micro_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(micro_data_dir, data, ignore=shutil.ignore_patterns("frames.zip"))
    first_id = (data / "train.csv").read_text().splitlines()[1].split(",")[0]
    with zipfile.ZipFile(micro_data_dir / "frames.zip") as source, zipfile.ZipFile(data / "frames.zip", "w") as target:
        for info in source.infolist():
            corrupt = f"/video_{first_id}/frame_0.jpg" in info.filename
            target.writestr(info, b"not a jpeg" if corrupt else source.read(info))
            if corrupt:
                member = info.filename
    result = run_without_img_size(data, tmp_path)
    assert result.exit_code == 2, result.output
    assert f"member {member} of clip {first_id}: cannot decode" in result.output
    assert not (tmp_path / "m.pt").exists()
