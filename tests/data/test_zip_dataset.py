import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests.data.conftest import clip_members, frame_colour, jpeg_bytes
from whatnext.data.zip_dataset import ClipDataset, DataFormatError, course_kit_layout, extract_frames, frame_index


def test_items_are_uint8_clips_with_label_and_id_in_csv_order(make_data_dir):
    data = make_data_dir(train=[(7, 3), (5, 19)])
    ds = ClipDataset(data, "train")
    frames, label, clip_id = ds[1]
    assert frames.shape == (4, 3, 16, 16) and frames.dtype == torch.uint8
    assert (label, clip_id) == (19, "5")
    assert ds.clip_ids == ["7", "5"] and ds.labels.tolist() == [3, 19] and ds.labels.dtype == np.int64


def test_frames_come_in_temporal_order(make_data_dir):
    members = clip_members("train", 1, 0)
    shuffled = dict(reversed(list(members.items())))  # zip order 3, 2, 1, 0
    ds = ClipDataset(make_data_dir(train=[(1, 0)], members=shuffled), "train")
    red = ds[0][0][:, 0, 8, 8].int()
    expected = torch.tensor([frame_colour(1, k)[0] for k in range(4)])
    assert (red - expected).abs().max() <= 3  # JPEG rounding


def test_test_split_has_label_minus_one(make_data_dir):
    ds = ClipDataset(make_data_dir(test=[11, 12]), "test")
    assert ds.labels.tolist() == [-1, -1] and ds[0][1] == -1


def test_labels_csv_overrides_the_split_labels(make_data_dir, tmp_path):
    data = make_data_dir(test=[11, 12])
    (tmp_path / "pseudo.csv").write_text("video_id,label\n11,4\n12,30\n")
    ds = ClipDataset(data, "test", labels_csv=tmp_path / "pseudo.csv")
    assert ds.labels.tolist() == [4, 30]


def test_extracted_folder_reads_the_same_as_the_zip(make_data_dir):
    data = make_data_dir(train=[(1, 2), (2, 5)])
    extract_frames(data / "frames.zip", data / "frames")
    from_zip = ClipDataset(data, "train")
    from_folder = ClipDataset(data, "train", frames=data / "frames")
    assert not from_folder.source.is_zip
    for i in range(2):
        assert torch.equal(from_zip[i][0], from_folder[i][0]) and from_zip[i][1:] == from_folder[i][1:]


def test_a_leading_root_folder_in_the_zip_is_accepted():
    assert course_kit_layout("frames/val/Some class/video_9/frame_2.jpg").video_id == "9"
    assert course_kit_layout("train/x/video_9/notes.txt") is None


def test_frame_size_resizes_with_and_without_draft(make_data_dir):
    data = make_data_dir(train=[(1, 2)])
    for draft in (True, False):
        frames = ClipDataset(data, "train", frame_size=8, draft=draft)[0][0]
        assert frames.shape == (4, 3, 8, 8)


def test_index_is_built_once_per_source(make_data_dir):
    data = make_data_dir(train=[(1, 2)], val=[(3, 4)])
    train, val = ClipDataset(data, "train"), ClipDataset(data, "val")
    assert frame_index(train.source) is frame_index(val.source)


def test_dataloader_workers_read_the_zip_safely(make_data_dir):
    data = make_data_dir(train=[(i, i % 33 if i % 33 != 27 else 0) for i in range(1, 25)])
    ds = ClipDataset(data, "train")
    ds[0]  # the parent opens its handle first: forked workers must not reuse it
    sequential = torch.stack([ds[i][0] for i in range(len(ds))])
    loaded = torch.cat([batch[0] for batch in DataLoader(ds, batch_size=4, num_workers=2)])
    assert torch.equal(sequential, loaded)


def test_dataset_pickles_without_its_zip_handle(make_data_dir):
    ds = ClipDataset(make_data_dir(train=[(1, 2)]), "train")
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.source._zip is None and torch.equal(clone[0][0], ds[0][0])


def test_unstacked_items_hold_the_4_decoded_frames_of_the_stacked_clip(make_data_dir):
    data = make_data_dir(train=[(1, 2)])
    frames, label, clip_id = ClipDataset(data, "train", stacked=False)[0]
    assert len(frames) == 4 and all(f.shape == (3, 16, 16) for f in frames)
    assert torch.equal(torch.stack(frames), ClipDataset(data, "train").read_frames(0))
    with pytest.raises(ValueError, match="stacked"):
        ClipDataset(data, "train", transform=lambda f: f, stacked=False)


def test_transform_maps_the_frames_and_keeps_label_and_id(make_data_dir):
    ds = ClipDataset(make_data_dir(train=[(1, 2)]), "train", transform=lambda frames: frames[:, :, :2].float())
    frames, label, clip_id = ds[0]
    raw = ds.read_frames(0)
    assert frames.dtype == torch.float32 and torch.equal(frames, raw[:, :, :2].float())
    assert (label, clip_id) == (int(ds.labels[0]), ds.clip_ids[0])


# ---- bad input -------------------------------------------------------------------------------


def test_csv_missing_label_column_names_the_file(make_data_dir):
    data = make_data_dir(train=[(1, 2)], csv={"train": "video_id,klass\n1,2\n"})
    with pytest.raises(DataFormatError, match=r"train\.csv: missing columns \['label'\]"):
        ClipDataset(data, "train")


def test_csv_duplicate_ids_are_an_error(make_data_dir):
    data = make_data_dir(train=[(1, 2), (1, 3)])
    with pytest.raises(DataFormatError, match=r"train\.csv: duplicate video_id \['1'\]"):
        ClipDataset(data, "train")


@pytest.mark.parametrize("label", ["33", "-1", "two", ""])
def test_label_outside_the_classes_names_file_and_clip(make_data_dir, label):
    data = make_data_dir(train=[(1, 2)], csv={"train": f"video_id,label\n1,{label}\n"})
    with pytest.raises(DataFormatError, match=r"train\.csv: clip 1: label"):
        ClipDataset(data, "train")


def test_csv_id_absent_from_the_frames_is_an_error(make_data_dir):
    data = make_data_dir(train=[(1, 2)], csv={"train": "video_id,label\n1,2\n99,4\n"})
    with pytest.raises(DataFormatError, match=r"clip 99: no frames in train/"):
        ClipDataset(data, "train")


def test_clip_with_three_frames_is_an_error(make_data_dir):
    data = make_data_dir(train=[(1, 2)], members=clip_members("train", 1, 2, frames=range(3)))
    with pytest.raises(DataFormatError, match=r"clip 1: 3 frames in train/ .*expected 4"):
        ClipDataset(data, "train")


def test_skip_mode_counts_and_reports_every_dropped_clip(make_data_dir):
    members = {**clip_members("train", 1, 2), **clip_members("train", 2, 3, frames=range(5))}
    data = make_data_dir(train=[(1, 2), (2, 3)], members=members,
                         csv={"train": "video_id,label\n1,2\n2,3\n3,40\n"})
    ds = ClipDataset(data, "train", on_bad="skip")
    assert ds.clip_ids == ["1"]
    assert [clip for clip, _ in ds.skipped] == ["2", "3"]
    assert "5 frames" in ds.skipped[0][1] and "label 40" in ds.skipped[1][1]


def test_corrupt_jpeg_names_the_member_and_clip(make_data_dir):
    members = clip_members("train", 1, 2)
    members["train/class_2/video_1/frame_2.jpg"] = jpeg_bytes((1, 2, 3))[:40]  # truncated
    ds = ClipDataset(make_data_dir(train=[(1, 2)], members=members), "train")
    with pytest.raises(DataFormatError, match=r"member train/class_2/video_1/frame_2\.jpg of clip 1: cannot decode"):
        ds[0]


def test_verify_in_skip_mode_drops_clips_with_corrupt_jpegs(make_data_dir):
    members = {**clip_members("train", 1, 2), **clip_members("train", 2, 3)}
    members["train/class_3/video_2/frame_0.jpg"] = b"not a jpeg"
    ds = ClipDataset(make_data_dir(train=[(1, 2), (2, 3)], members=members), "train", on_bad="skip")
    newly = ds.verify()
    assert [c for c, _ in newly] == ["2"] and ds.clip_ids == ["1"] and ds.labels.tolist() == [2] and len(ds) == 1


def test_missing_frames_source_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("video_id,label\n")
    with pytest.raises(DataFormatError, match="no such frames zip or folder"):
        ClipDataset(tmp_path, "train")


def test_extract_refuses_members_outside_the_target(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("train/c/video_1/frame_0.jpg", b"x")
        archive.writestr("../../escaped.txt", b"x")
    with pytest.raises(DataFormatError, match=r"member '\.\./\.\./escaped\.txt' would be written outside"):
        extract_frames(evil, tmp_path / "out" / "frames")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out").exists()


def test_extract_refuses_absolute_members(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(zipfile.ZipInfo("/etc/whatnext_owned"), b"x")
    with pytest.raises(DataFormatError, match="would be written outside"):
        extract_frames(evil, tmp_path / "frames")


def test_damaged_bytes_inside_the_zip_fail_the_crc_check(make_data_dir):
    data = make_data_dir(train=[(1, 2)])
    raw = bytearray((data / "frames.zip").read_bytes())
    name = b"train/class_2/video_1/frame_1.jpg"
    at = raw.index(name) + len(name) + 200  # inside the first occurrence's (stored) JPEG data
    raw[at] ^= 0xFF
    (data / "frames.zip").write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"member train/class_2/video_1/frame_1\.jpg of clip 1: .*CRC"):
        ClipDataset(data, "train")[0]


def test_deflated_members_are_read_too(make_data_dir, tmp_path):
    data = make_data_dir(train=[(1, 2)])
    stored = ClipDataset(data, "train")[0][0]
    with zipfile.ZipFile(data / "frames.zip") as src, zipfile.ZipFile(tmp_path / "deflated.zip", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert torch.equal(ClipDataset(data, "train", frames=tmp_path / "deflated.zip")[0][0], stored)


def test_draft_without_resize_returns_the_smallest_scale_at_least_the_size(make_data_dir):
    members = {f"train/c/video_1/frame_{k}.jpg": jpeg_bytes((10, 20, 30), size=64) for k in range(4)}
    data = make_data_dir(train=[(1, 2)], members=members)
    assert ClipDataset(data, "train", frame_size=20, resize=False)[0][0].shape == (4, 3, 32, 32)  # 64 / 2
    assert ClipDataset(data, "train", frame_size=16, resize=False)[0][0].shape == (4, 3, 16, 16)  # 64 / 4


def test_layout_adapter_reads_another_member_naming(make_data_dir):
    from whatnext.data.zip_dataset import FrameRef

    def flat_layout(member):  # e.g. "clips/train/1_k2.jpg"
        folder, split, name = member.split("/")
        clip, k = name.removesuffix(".jpg").split("_k")
        return FrameRef(split, clip, int(k))

    members = {f"clips/train/1_k{k}.jpg": jpeg_bytes(frame_colour(1, k)) for k in range(4)}
    ds = ClipDataset(make_data_dir(train=[(1, 2)], members=members), "train", layout=flat_layout)
    assert ds.clip_ids == ["1"] and ds[0][0].shape == (4, 3, 16, 16)


def test_extract_refuses_symlink_members(tmp_path):
    evil = tmp_path / "evil.zip"
    link = zipfile.ZipInfo("train/c/video_1/frame_0.jpg")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(DataFormatError, match="would be written outside"):
        extract_frames(evil, tmp_path / "frames")


def test_extract_writes_a_clean_tree(make_data_dir):
    data = make_data_dir(train=[(1, 2)], test=[5])
    assert extract_frames(data / "frames.zip", data / "frames") == 8
    assert (data / "frames" / "test" / "video_5" / "frame_3.jpg").is_file()
