"""The EPIC-KITCHENS-100 reader: annotation CSVs over extracted frames or the MP4 videos.

A data dir holds ``train.csv``, ``val.csv`` (EPIC_100_train / EPIC_100_validation, columns
``narration_id, participant_id, video_id, start_frame, stop_frame, verb_class, noun_class``; others are
ignored), ``test.csv`` (the same without the classes), ``video_info.csv`` (``video_id, duration, fps``),
``verb_classes.csv`` / ``noun_classes.csv`` (``id, key``) and the videos, each either as extracted frames
``rgb_frames/P01/P01_101/frame_0000000001.jpg`` (1-based, as ``start_frame`` counts) or as
``videos/P01/P01_101.MP4`` decoded by seeking to the frames a clip needs (:mod:`whatnext.data.mp4`:
TorchCodec where it finds FFmpeg libraries, else PyAV; the brief's extracted frames take ~200 GB, the videos
do not). ``reader``: ``frames``, ``video`` or ``auto`` (frames where the folder exists, else the MP4).
``open_videos``: how many MP4 readers each process keeps open for the split (the least recently read closed
first, :mod:`whatnext.data.open_videos`; default 8).

A segment gives T uniformly spaced frames: the segment ``[start, stop]`` is cut into T equal bins and each
clip takes one frame per bin, clip c of C at fraction (c + 0.5) / C of every bin (one clip: the bins'
centres). Items: ``(frames uint8 [T, C, H, W], packed label, narration_id)``, the label
:meth:`whatnext.tasks.Task.encode` of (verb, noun), -1 for the unlabelled test split; with a ``transform``
(test-time views) ``(views uint8 [C x V, T, C, H, W], label, id)``, the V views of each of the C clips.

Everything is checked when the split is opened, and each fault raises :class:`DataFormatError` naming the
file and the segment: missing columns, a duplicate narration id, a class id outside the class files, a
video with neither frames nor an MP4, a segment outside its video.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from whatnext.data.open_videos import OPEN_VIDEOS, OpenVideos
from whatnext.data.zip_dataset import DataFormatError, decode_jpeg
from whatnext.tasks import EPIC_CLASS_FILES, Task, TaskError, load_task

SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
SEGMENT_COLUMNS = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame")
CLASS_COLUMNS = ("verb_class", "noun_class")
READERS = ("auto", "frames", "video")


def read_rows(path: Path, columns: tuple[str, ...]) -> list[dict]:
    """Rows of a CSV with at least ``columns`` (DataFormatError naming the file otherwise)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: no such annotation file")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(f"{path}: missing columns {missing} (has {reader.fieldnames})")
        return list(reader)


def video_frame_counts(data_dir: Path) -> dict[str, int]:
    """video_id -> frames (round(duration x fps)) from ``video_info.csv``."""
    path = data_dir / "video_info.csv"
    counts = {}
    for row in read_rows(path, ("video_id", "duration", "fps")):
        try:
            counts[row["video_id"]] = int(round(float(row["duration"]) * float(row["fps"])))
        except ValueError:
            raise DataFormatError(f"{path}: video {row['video_id']}: bad duration or fps {row}") from None
    return counts


def segment_frame_indices(start: int, stop: int, num_frames: int, clip: int = 0, clips: int = 1) -> list[int]:
    """The 1-based frames of clip ``clip`` of ``clips``: T = ``num_frames`` uniformly spaced in [start, stop]."""
    length = stop - start + 1
    where = (np.arange(num_frames) + (clip + 0.5) / clips) * length / num_frames
    return (start + np.minimum(np.floor(where), length - 1)).astype(int).tolist()


class VideoFrames:
    """Frames of one video by 1-based index: from ``rgb_frames/<P>/<video>/`` or by seeking in the MP4
    (:mod:`whatnext.data.mp4`: TorchCodec, else PyAV) through a reader that ``open_videos`` holds open (the
    dataset's pool, shared by its videos; a pool of its own where none is given)."""

    def __init__(self, folder: Path | None, mp4: Path | None, open_videos: OpenVideos | None = None):
        self.folder, self.mp4 = folder, mp4
        self.open_videos = open_videos if open_videos is not None else OpenVideos()

    def read(self, indices: list[int]) -> torch.Tensor:
        """uint8 [len(indices), C, H, W]."""
        if self.folder is not None:
            frames = []
            for k in indices:
                path = self.folder / f"frame_{k:010d}.jpg"
                try:
                    frames.append(decode_jpeg(path.read_bytes()))
                except (OSError, RuntimeError) as err:
                    raise DataFormatError(f"{path}: cannot read frame ({err})") from None
            return torch.stack(frames)
        try:
            video = self.open_videos.get(self.mp4)
        except (ImportError, OSError, RuntimeError, ValueError) as err:
            raise DataFormatError(f"{self.mp4}: cannot open the video ({str(err).splitlines()[0]})") from None
        try:
            return video.read([k - 1 for k in indices])
        except (IndexError, RuntimeError, ValueError) as err:
            raise DataFormatError(f"{self.mp4}: cannot decode frames {indices[0]}..{indices[-1]} "
                                  f"(1-based; {err})") from None


class EpicSegments(Dataset):
    """One split's segments (see the module docstring). ``labels``: packed int64 [n] (-1 for test, and for every
    split with ``read_labels=False``, as self-supervised pretraining reads them);
    ``clip_ids``: narration ids; ``verbs`` / ``nouns``: int64 [n] (-1 for test)."""

    def __init__(self, data_dir: str | Path, split: str, num_frames: int, clips: int = 1, transform=None,
                 reader: str = "auto", task: Task | None = None, read_labels: bool = True,
                 open_videos: int = OPEN_VIDEOS):
        if split not in SPLIT_FILES:
            raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
        if reader not in READERS:
            raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
        self.data_dir = Path(data_dir)
        self.csv_path = self.data_dir / SPLIT_FILES[split]
        self.num_frames, self.clips, self.transform = num_frames, clips, transform
        try:
            self.task = task or load_task("epic", self.data_dir)
        except TaskError as err:
            raise DataFormatError(str(err)) from None
        labelled = split != "test" and read_labels
        rows = read_rows(self.csv_path, SEGMENT_COLUMNS + (CLASS_COLUMNS if labelled else ()))
        lengths = video_frame_counts(self.data_dir)
        self.open_videos = OpenVideos(open_videos)  # the MP4 readers, shared by the videos
        self.videos: dict[str, VideoFrames] = {}
        self.clip_ids, self.segments, verbs, nouns = [], [], [], []
        seen = set()
        sizes = dict(self.task.heads)
        for row in rows:
            nid, vid = row["narration_id"], row["video_id"]
            where = f"{self.csv_path}: segment {nid}"
            if nid in seen:
                raise DataFormatError(f"{where}: narration id listed twice")
            seen.add(nid)
            try:
                start, stop = int(row["start_frame"]), int(row["stop_frame"])
                classes = [int(row[c]) for c in CLASS_COLUMNS] if labelled else [-1, -1]
            except ValueError:
                raise DataFormatError(f"{where}: frame numbers and class ids must be integers, got {row}") from None
            for (head, value) in zip(("verb", "noun"), classes):
                if labelled and not 0 <= value < sizes[head]:
                    raise DataFormatError(f"{where}: {head}_class {value} outside 0..{sizes[head] - 1} "
                                          f"({EPIC_CLASS_FILES[head]} has {sizes[head]} classes)")
            if vid not in lengths:
                raise DataFormatError(f"{where}: video {vid} is not in {self.data_dir / 'video_info.csv'}")
            if not 1 <= start <= stop <= lengths[vid]:
                raise DataFormatError(f"{where}: frames {start}..{stop} outside video {vid} (frames 1..{lengths[vid]})")
            if vid not in self.videos:
                self.videos[vid] = self._locate(row["participant_id"], vid, reader, where)
            self.clip_ids.append(nid)
            self.segments.append((vid, start, stop))
            verbs.append(classes[0])
            nouns.append(classes[1])
        self.verbs, self.nouns = np.asarray(verbs, np.int64), np.asarray(nouns, np.int64)
        self.labels = self.task.encode(self.verbs, self.nouns) if labelled else np.full(len(rows), -1, np.int64)

    def _locate(self, participant: str, vid: str, reader: str, where: str) -> VideoFrames:
        folder = self.data_dir / "rgb_frames" / participant / vid
        mp4 = self.data_dir / "videos" / participant / f"{vid}.MP4"
        if reader != "video" and folder.is_dir():
            return VideoFrames(folder, None)
        if reader != "frames" and mp4.is_file():
            return VideoFrames(None, mp4, self.open_videos)
        looked = {"frames": [folder], "video": [mp4], "auto": [folder, mp4]}[reader]
        raise DataFormatError(f"{where}: video {vid} missing: no {' nor '.join(str(p) for p in looked)}")

    def __len__(self) -> int:
        return len(self.clip_ids)

    def read_frames(self, i: int, clip: int = 0) -> torch.Tensor:
        """uint8 [T, C, H, W]: clip ``clip`` of segment ``i``."""
        vid, start, stop = self.segments[i]
        return self.videos[vid].read(segment_frame_indices(start, stop, self.num_frames, clip, self.clips))

    def __getitem__(self, i: int):
        if self.transform is None:
            return self.read_frames(i), int(self.labels[i]), self.clip_ids[i]
        views = [self.transform(self.read_frames(i, c)) for c in range(self.clips)]
        return torch.cat(views), int(self.labels[i]), self.clip_ids[i]


class ClipViews:
    """Test-time views of ``clips`` temporal clips: the per-clip ``views`` (a :class:`whatnext.data.tta.TTAViews`)
    with ``flipped`` repeated per clip, as :func:`whatnext.finetune.evaluation.predict_probs` reads it."""

    def __init__(self, views, clips: int):
        self.views, self.clips = views, clips
        self.flipped = views.flipped.repeat(clips)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.views(frames)
