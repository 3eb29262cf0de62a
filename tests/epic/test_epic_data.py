"""The generated EPIC-like data and the EPIC reader: layout, determinism, long tail, uniform sampling,
multi-clip views, the MP4 path, and bad input named."""

from __future__ import annotations

import collections
import csv
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from whatnext.data.epic_dataset import ClipViews, EpicSegments, segment_frame_indices
from whatnext.data.epic_synth import COLUMNS, generate, mp4_encoder, plan_video
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


@pytest.mark.skipif(mp4_encoder() is None, reason="TorchCodec finds no FFmpeg libraries here: no MP4 to write or read")
def test_mp4_path_matches_the_frames(tmp_path, tiny_options):
    generate(tmp_path / "mp4", **(tiny_options | {"mp4": 1}))
    assert (tmp_path / "mp4/videos/P01/P01_101.MP4").is_file()
    assert not (tmp_path / "mp4/rgb_frames/P01/P01_101").exists()
    generate(tmp_path / "jpg", **tiny_options)
    video = EpicSegments(tmp_path / "mp4", "train", num_frames=8)
    jpeg = EpicSegments(tmp_path / "jpg", "train", num_frames=8)
    assert video.videos["P01_101"].mp4 is not None
    a, b = video.read_frames(2).float(), jpeg.read_frames(2).float()
    assert a.shape == b.shape and (a - b).abs().mean() < 12  # H.264 vs JPEG of the same frames
    with pytest.raises(DataFormatError, match="video P01_101 missing"):
        EpicSegments(tmp_path / "mp4", "train", num_frames=8, reader="frames")
