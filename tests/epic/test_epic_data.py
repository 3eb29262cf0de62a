"""The generated EPIC-like data and the EPIC reader: layout, determinism, long tail, uniform sampling,
multi-clip views, the MP4 path (segments read the exact frames), and bad input named."""

from __future__ import annotations

import collections
import csv
import hashlib
import shutil
import subprocess
import sys

import click

import numpy as np
import pytest
import torch

from whatnext.data.epic_dataset import ClipViews, EpicSegments, segment_frame_indices
from whatnext.data.epic_synth import COLUMNS, FPS, generate, plan_video
from whatnext.data.mp4 import write_mp4
from whatnext.data.tta import TTAViews
from whatnext.data.zip_dataset import DataFormatError


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def test_layout_and_columns(epic_dir):
    assert (epic_dir / "rgb_frames/P01/P01_101/frame_0000000001.jpg").is_file()
    train = rows(epic_dir / "train.csv")
    assert list(train[0]) == COLUMNS and len(train) == 6
    assert list(rows(epic_dir / "test.csv")[0]) == COLUMNS[:5]
    assert {r["video_id"] for r in rows(epic_dir / "val.csv")} == {"P01_102"}
    assert {r["video_id"] for r in rows(epic_dir / "test.csv")} == {"P01_103"}
    lengths = {int(r["stop_frame"]) - int(r["start_frame"]) + 1 for r in train}
    assert len(lengths) > 3 and min(lengths) >= 6  # segments of different lengths


def test_deterministic(epic_dir, tmp_path, tiny_options):
    generate(tmp_path / "again", **tiny_options)
    assert digest(tmp_path / "again") == digest(epic_dir)
    generate(tmp_path / "other", **(tiny_options | {"seed": 1}))
    assert digest(tmp_path / "other") != digest(epic_dir)


def test_long_tailed_and_many_rare_pairs():
    rng = np.random.default_rng(0)
    planned, _ = plan_video(rng, 1200, 20, 40)
    verbs = np.bincount([verb for *_, verb, _ in planned], minlength=20)
    nouns = np.bincount([noun for *_, noun in planned], minlength=40)
    assert verbs[0] > 5 * verbs[-5:].mean() and nouns[0] > 5 * nouns[-10:].mean()
    pairs = np.array(list(collections.Counter((v, n) for *_, v, n in planned).values()))
    assert (pairs == 1).sum() > len(pairs) / 3  # a third of the combinations are seen once
    assert all(b - a + 1 >= 6 for a, b, *_ in planned)


def test_uniform_indices():
    assert segment_frame_indices(11, 20, 5) == [12, 14, 16, 18, 20]  # bin centres (bins of 2 frames)
    assert segment_frame_indices(11, 20, 5, clip=0, clips=2) == [11, 13, 15, 17, 19]
    assert segment_frame_indices(11, 20, 5, clip=1, clips=2) == [12, 14, 16, 18, 20]
    assert segment_frame_indices(1, 3, 8) == [1, 1, 1, 2, 2, 3, 3, 3]  # short segment: frames repeat


def test_items_and_views(epic_dir):
    train = EpicSegments(epic_dir, "train", num_frames=8)
    frames, label, nid = train[0]
    assert frames.shape == (8, 3, 16, 16) and frames.dtype == torch.uint8 and nid == "P01_101_0"
    assert label == train.verbs[0] * 6 + train.nouns[0]
    test = EpicSegments(epic_dir, "test", num_frames=4, clips=3, transform=TTAViews(16, five_crop=False))
    views, label, _ = test[0]
    assert views.shape == (3, 4, 3, 16, 16) and label == -1 and (test.labels == -1).all()
    assert not torch.equal(views[0], views[1])  # the clips take different frames
    assert ClipViews(TTAViews(16, five_crop=False), 3).flipped.tolist() == [False] * 3


def replace_in(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize("edit, message", [
    (lambda d: replace_in(d / "train.csv", "P01_101_0,P01,P01_101,", "P01_101_0,P01,P01_101,9000"),
     r"train.csv: segment P01_101_0: frames 9000\d+..\d+ outside video P01_101"),
    (lambda d: __import__("shutil").rmtree(d / "rgb_frames/P01/P01_101"),
     r"train.csv: segment P01_101_0: video P01_101 missing: no .*rgb_frames/P01/P01_101 nor .*videos/P01/P01_101.MP4"),
    (lambda d: (d / "verb_classes.csv").write_text("id,key\n0,take\n1,put\n"),
     r"train.csv: segment P01_101_\d+: verb_class \d outside 0..1 \(verb_classes.csv has 2 classes\)"),
    (lambda d: replace_in(d / "video_info.csv", "P01_101,", "P01_999,"),
     r"train.csv: segment P01_101_0: video P01_101 is not in .*video_info.csv"),
])
def test_bad_input_named(epic_copy, edit, message):
    edit(epic_copy)
    with pytest.raises(DataFormatError, match=message):
        EpicSegments(epic_copy, "train", num_frames=4)


def test_bad_input_exits_2_from_a_cli(epic_copy):
    replace_in(epic_copy / "train.csv", "P01_101_0,P01,P01_101,", "P01_101_0,P01,P01_101,9000")
    run = subprocess.run([sys.executable, "-m", "whatnext.data.norm_stats", "--task", "epic", "--data", str(epic_copy),
                          "--out", str(epic_copy / "norm_stats.json")], capture_output=True, text=True)
    assert run.returncode == 2 and "segment P01_101_0" in run.stderr and "outside video P01_101" in run.stderr


def test_mp4_layout_and_determinism(epic_mp4_dir, tmp_path, tiny_options):
    assert (epic_mp4_dir / "videos/P01/P01_101.MP4").is_file()
    assert not (epic_mp4_dir / "rgb_frames/P01/P01_101").exists()
    assert (epic_mp4_dir / "rgb_frames/P01/P01_102").is_dir()  # val and test stay frames
    generate(tmp_path / "again", **(tiny_options | {"mp4": 1}))
    assert digest(tmp_path / "again") == digest(epic_mp4_dir)


def test_auto_reader_picks_the_mp4_where_no_frames_folder(epic_mp4_dir):
    train = EpicSegments(epic_mp4_dir, "train", num_frames=8)
    assert train.videos["P01_101"].mp4 is not None and train.videos["P01_101"].folder is None
    val = EpicSegments(epic_mp4_dir, "val", num_frames=8)
    assert val.videos["P01_102"].folder is not None
    with pytest.raises(DataFormatError, match="video P01_101 missing: no .*rgb_frames/P01/P01_101$"):
        EpicSegments(epic_mp4_dir, "train", num_frames=8, reader="frames")


def test_mp4_frames_match_the_rendered_frames(epic_mp4_dir, epic_dir):
    video = EpicSegments(epic_mp4_dir, "train", num_frames=8)
    jpeg = EpicSegments(epic_dir, "train", num_frames=8)
    for i in range(len(video)):
        a, b = video.read_frames(i).float(), jpeg.read_frames(i).float()
        assert a.shape == b.shape == (8, 3, 16, 16) and (a - b).abs().mean() < 12  # H.264 vs JPEG of the same frames


QUADRANTS = ((0, 0), (0, 8), (8, 0), (8, 8))  # a frame number in base 8: one digit per 8x8 quadrant, grey 28 x digit + 16


def index_video(path, frames: int) -> None:
    """A 16 px MP4 of ``frames`` frames whose frame k (1-based) shows k (see QUADRANTS)."""
    video = np.zeros((frames, 16, 16, 3), np.uint8)
    for k in range(1, frames + 1):
        for q, (y, x) in enumerate(QUADRANTS):
            video[k - 1, y:y + 8, x:x + 8] = 28 * (k // 8 ** (3 - q) % 8) + 16
    write_mp4(path, video, FPS, gop=FPS)


def shown_frames(frames: torch.Tensor) -> list[int]:
    """The frame numbers that frames uint8 [n, 3, 16, 16] show (quadrant centres read back, nearest level)."""
    digits = [((frames[:, :, y + 2:y + 6, x + 2:x + 6].float().mean((1, 2, 3)) - 16) / 28).round().long()
              for y, x in QUADRANTS]
    return sum(d * 8 ** (3 - q) for q, d in enumerate(digits)).tolist()


def test_segments_read_the_exact_mp4_frames(epic_mp4_dir, tmp_path):
    """The generated MP4 swapped for one whose frames show their number: every clip of every segment."""
    shutil.copytree(epic_mp4_dir, tmp_path / "epic")
    info = rows(tmp_path / "epic/video_info.csv")
    frames = {r["video_id"]: round(float(r["duration"]) * float(r["fps"])) for r in info}
    index_video(tmp_path / "epic/videos/P01/P01_101.MP4", frames["P01_101"])
    train = EpicSegments(tmp_path / "epic", "train", num_frames=8, clips=3)
    for i, (_, start, stop) in enumerate(train.segments):
        for clip in range(3):
            assert shown_frames(train.read_frames(i, clip)) == segment_frame_indices(start, stop, 8, clip, 3)
    assert shown_frames(train.videos["P01_101"].read([frames["P01_101"], 1])) == [frames["P01_101"], 1]


@pytest.mark.parametrize("edit, message", [
    (lambda d: (d / "videos/P01/P01_101.MP4").unlink(),
     r"train.csv: segment P01_101_0: video P01_101 missing: no .*rgb_frames/P01/P01_101 nor .*videos/P01/P01_101.MP4"),
    (lambda d: replace_in(d / "train.csv", "P01_101_0,P01,P01_101,", "P01_101_0,P01,P01_101,9000"),
     r"train.csv: segment P01_101_0: frames 9000\d+..\d+ outside video P01_101"),
    (lambda d: (d / "videos/P01/P01_101.MP4").write_bytes(b"not a video"),
     r"videos/P01/P01_101.MP4: cannot open the video"),
    (lambda d: index_video(d / "videos/P01/P01_101.MP4", 12),  # shorter than video_info.csv says
     r"videos/P01/P01_101.MP4: cannot decode frames \d+..\d+ \(1-based; frame indices \[.*\] outside 0..11\)"),
])
def test_bad_mp4_named(epic_mp4_dir, tmp_path, edit, message):
    shutil.copytree(epic_mp4_dir, tmp_path / "epic")
    edit(tmp_path / "epic")
    with pytest.raises(DataFormatError, match=message):
        train = EpicSegments(tmp_path / "epic", "train", num_frames=4)  # checks the segments against video_info.csv
        train.read_frames(len(train) - 1)  # opens and decodes the MP4


def test_odd_frame_size_refused_for_mp4(tmp_path, tiny_options):
    with pytest.raises(click.BadParameter, match="--size must be even for MP4 videos"):
        generate(tmp_path / "odd", **(tiny_options | {"size": 17, "mp4": 1}))
    generate(tmp_path / "odd", **(tiny_options | {"size": 17, "mp4": 0}))  # frames only: any size
