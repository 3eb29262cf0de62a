"""The challenge-format clip reader.

A data dir holds ``frames.zip`` (or the same tree extracted as ``frames/``) and the label CSVs::

    DATA/frames.zip   train/<class folder>/video_<id>/frame_<k>.jpg   (val/ likewise)
                      test/video_<id>/frame_<k>.jpg
    DATA/train.csv    video_id,label      (label: class id in 0..32, class name or kit folder name)
    DATA/val.csv      video_id,label
    DATA/test.csv     video_id

The CSV forms (ids with or without ``video_``, integer-looking ids, the label forms) are those of
:mod:`whatnext.data.split_csv`; CSV ids are matched to frame folders by its ``clip_key``.

Layout (the course kit's): a clip is the folder ``video_<id>`` (or plain ``<id>``); its frames ``frame_<k>.jpg`` are in
temporal order of the integer k (any 4 distinct k; the generator writes 0..3). The class folder's name is
free (the generator writes the class name): labels always come from the CSV. One optional leading folder
(a zip built from a parent directory, e.g. ``frames/train/...``) is accepted. The adapter point for another
layout is ``layout=``: any callable mapping a member path (``/``-separated) to ``FrameRef(split, video_id,
k)`` or None for members that are not frames.

Items are ``(frames, label, clip_id)``: frames uint8 [4, 3, H, W] (RGB), label int
(-1 for test), clip_id the CSV's ``video_id`` string. Reading from the zip never extracts; each process
(and each DataLoader worker, detected by its pid) opens its own handle lazily. The frame index (which
members make which clip) is built once per data source and process (about 2 s of CPU for the full
challenge zip of 234,600 members) and cached in memory, keyed on the source's path, size and modification
time; DataLoader workers inherit it. Frames decode with libjpeg-turbo through TorchCodec (about 1.9x
faster than Pillow, which parses the JPEG headers in Python); ``frame_size`` decodes to a smaller square
with Pillow's JPEG draft mode instead (``decode_jpeg``).

Bad input raises ``DataFormatError`` naming the file and the clip: a CSV without its columns or with
duplicate ids, a label that names no class, a CSV id with no frames, a clip with other than 4
frames, a missing or corrupt JPEG. With ``on_bad="skip"`` the clip-level problems drop the clip instead,
counted in ``ds.skipped`` and logged; corrupt JPEGs (and zip members failing their CRC) are found when
decoded, or all at once by ``ds.verify()``. ``extract_frames`` unpacks a zip safely (zip-slip checked).
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image
from torchcodec.decoders import decode_jpeg as decode_jpeg_turbo

from whatnext.data.class_table import load_class_table
from whatnext.data.split_csv import DataFormatError, LabelParser, clip_key, read_split_csv

log = logging.getLogger(__name__)

FRAMES_PER_CLIP = 4
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header: signature ... name length, extra length
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FrameRef:
    """Where a member sits in the layout: split, clip id (the CSV's video_id) and temporal index k."""

    split: str
    video_id: str
    k: int


Layout = Callable[[str], "FrameRef | None"]

_COURSE_KIT = re.compile(
    r"^(?:[^/]+/)?(?P<split>train|val|test)/(?:[^/]+/)?(?:video_)?(?P<id>[^/]+)/frame_(?P<k>\d+)\.jpe?g$", re.IGNORECASE
)


def course_kit_layout(member: str) -> FrameRef | None:
    """The course kit's layout (see the module docstring); None for anything that is not a frame."""
    match = _COURSE_KIT.match(member)
    if match is None:
        return None
    return FrameRef(match["split"].lower(), match["id"], int(match["k"]))


def decode_jpeg(data: bytes, frame_size: int | None = None, draft: bool = True, resize: bool = True) -> torch.Tensor:
    """Decode a JPEG to uint8 [3, H, W] RGB.

    Without ``frame_size``: TorchCodec's libjpeg-turbo decoder, at full size (channels-last strides). With ``frame_size``
    (Pillow): ``draft`` lets libjpeg decode at the smallest reduced scale (1/2, 1/4, 1/8) that is still
    at least ``frame_size`` on both sides, much faster when the target is smaller than the source;
    ``resize`` then resizes to exactly ``frame_size`` x ``frame_size`` (without it the draft-scaled
    frame is returned and the transform does the resizing, saving one pass). Corrupt data raises
    ``RuntimeError`` (TorchCodec) or ``OSError`` (Pillow).
    """
    if frame_size is None:
        return decode_jpeg_turbo(data, mode="RGB")
    image = Image.open(io.BytesIO(data))
    if draft and image.format == "JPEG":
        image.draft("RGB", (frame_size, frame_size))
    image = image.convert("RGB")
    if resize and image.size != (frame_size, frame_size):
        image = image.resize((frame_size, frame_size), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


class FrameSource:
    """Read-only access to the frame tree: ``frames.zip`` or an extracted folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise DataFormatError(f"{self.path}: no such frames zip or folder")
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._raw = None  # the same file opened plainly, for stored members
        self._pid: int | None = None

    def key(self) -> tuple:
        """Identity of the source's content for the index cache."""
        stat = self.path.stat()
        return (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)

    def names(self) -> Iterable[str]:
        """Every member path, ``/``-separated and relative to the source's root."""
        if self.is_zip:
            return [n for n in self._handle().namelist() if not n.endswith("/")]
        root = str(self.path)
        return [
            os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
            for d, _, files in os.walk(root)
            for f in files
        ]

    def read(self, member: str) -> bytes:
        """A member's bytes. Stored (uncompressed) zip members, the usual case for JPEGs, are read at their
        offset with a CRC check, skipping zipfile's per-member stream machinery (a third of the reader's
        overhead); anything else goes through ``ZipFile.read``."""
        if not self.is_zip:
            return (self.path / member).read_bytes()
        archive = self._handle()
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return archive.read(info)
        self._raw.seek(info.header_offset)
        header = self._raw.read(_LOCAL_HEADER.size)
        fields = _LOCAL_HEADER.unpack(header)
        signature, name_len, extra_len = fields[0], fields[-2], fields[-1]
        if signature != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {member}")
        self._raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
        data = self._raw.read(info.compress_size)
        if zlib.crc32(data) != info.CRC:
            raise zipfile.BadZipFile(f"CRC mismatch for {member}")
        return data

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():  # a forked worker must not share the parent's handles
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as err:
                raise DataFormatError(f"{self.path}: not a readable zip file ({err})") from err
            self._raw = open(self.path, "rb")
            self._pid = os.getpid()
        return self._zip

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_raw": None, "_pid": None}


_INDEX_CACHE: dict[tuple, dict[str, dict[str, list[tuple[int, str]]]]] = {}


def frame_index(source: FrameSource, layout: Layout = course_kit_layout) -> dict[str, dict[str, list[tuple[int, str]]]]:
    """split -> clip key (:func:`~whatnext.data.split_csv.clip_key` of the folder's id) -> [(k, member)]
    sorted by k; built once per source content and process."""
    key = (*source.key(), layout)
    if key not in _INDEX_CACHE:
        index: dict[str, dict[str, list[tuple[int, str]]]] = {s: {} for s in SPLITS}
        for name in source.names():
            ref = layout(name)
            if ref is not None:
                index.setdefault(ref.split, {}).setdefault(clip_key(ref.video_id), []).append((ref.k, name))
        for clips in index.values():
            for frames in clips.values():
                frames.sort()
        _INDEX_CACHE[key] = index
    return _INDEX_CACHE[key]


class ClipDataset(torch.utils.data.Dataset):
    """Clips of one split of a data dir (see the module docstring for formats and errors).

    data_dir: holds ``frames.zip`` or ``frames/`` and the CSVs (``frames=`` overrides the frames path).
    split: ``train``, ``val`` or ``test``. labels_csv: read labels from this ``video_id,label`` CSV
    instead of ``<split>.csv`` (e.g. pseudo-labels for test). transform: applied to the uint8 frames
    (evaluation views; training augments whole batches in the step, ``whatnext.data.clip_transforms``).
    frame_size, draft, resize: decode every frame to a square of this side (see ``decode_jpeg``;
    ``resize=False`` returns the draft-scaled frame, at least ``frame_size``, for a later resize).
    stacked: items hold the clip as one tensor [4, 3, H, W]; with ``stacked=False`` as the list of its 4
    decoded frames [3, H, W] (:meth:`decode_frames`), which ``whatnext.data.clip_batches.collate_clips``
    copies straight into the batch: one copy of the pixels instead of two.
    on_bad: ``"raise"`` or ``"skip"``. num_classes: defaults to the class table's. read_labels: with
    False the CSV gives only the clip ids (no label column needed, none read) and every label is -1, as for
    test (self-supervised pretraining).
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        transform: Callable | None = None,
        *,
        frames: str | Path | None = None,
        labels_csv: str | Path | None = None,
        frame_size: int | None = None,
        draft: bool = True,
        resize: bool = True,
        stacked: bool = True,
        on_bad: str = "raise",
        layout: Layout = course_kit_layout,
        num_classes: int | None = None,
        read_labels: bool = True,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
        if transform is not None and not stacked:
            raise ValueError("a transform needs stacked clips (stacked=True)")
        data_dir = Path(data_dir)
        if frames is None:
            frames = data_dir / "frames.zip" if (data_dir / "frames.zip").exists() else data_dir / "frames"
        self.source = FrameSource(frames)
        self.split, self.transform, self.on_bad, self.stacked = split, transform, on_bad, stacked
        self.decode_options = {"frame_size": frame_size, "draft": draft, "resize": resize}
        parse_label = LabelParser.from_table(load_class_table(), num_classes)
        labelled = read_labels and (labels_csv is not None or split != "test")
        self.csv_path = Path(labels_csv) if labels_csv is not None else data_dir / f"{split}.csv"
        ids, raw_labels = read_split_csv(self.csv_path, labelled)
        clips = frame_index(self.source, layout).get(split, {})
        self.skipped: list[tuple[str, str]] = []
        self.clip_ids: list[str] = []
        self.members: list[tuple[str, ...]] = []
        labels: list[int] = []
        for clip_id, raw in zip(ids, raw_labels):
            try:
                label = parse_label(raw) if labelled else -1
                members = self._clip_members(clip_id, clips.get(clip_key(clip_id)))
            except ValueError as err:
                self._bad(clip_id, f"{self.csv_path}: clip {clip_id}: {err}")
                continue
            self.clip_ids.append(clip_id)
            self.members.append(members)
            labels.append(label)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.skipped:
            log.warning("%s: skipped %d of %d clips (first: %s)", self.csv_path, len(self.skipped), len(ids), self.skipped[0][1])

    def _clip_members(self, clip_id: str, frames: list[tuple[int, str]] | None) -> tuple[str, ...]:
        where = f"{self.split}/ of {self.source.path}"
        if not frames:
            raise ValueError(f"no frames in {where}")
        if len(frames) != FRAMES_PER_CLIP:
            raise ValueError(f"{len(frames)} frames in {where} (expected {FRAMES_PER_CLIP}): {[m for _, m in frames]}")
        if len({k for k, _ in frames}) != FRAMES_PER_CLIP:
            raise ValueError(f"repeated frame numbers in {where}: {[m for _, m in frames]}")
        return tuple(m for _, m in frames)

    def _bad(self, clip_id: str, message: str) -> None:
        if self.on_bad == "raise":
            raise DataFormatError(message)
        self.skipped.append((clip_id, message))

    def __len__(self) -> int:
        return len(self.clip_ids)

    def read_frames(self, i: int) -> torch.Tensor:
        """Decoded frames of clip i: uint8 [4, 3, H, W] in channels-last memory."""
        # both decoders give channels-last frames: stack them as [4, H, W, 3] (a plain copy) and view as
        # [4, 3, H, W], the layout torch's uint8 resampling is fastest on
        return torch.stack([frame.permute(1, 2, 0) for frame in self.decode_frames(i)]).permute(0, 3, 1, 2)

    def decode_frames(self, i: int) -> list[torch.Tensor]:
        """The 4 decoded frames of clip i, in temporal order: uint8 [3, H, W] each (channels-last strides),
        all of one size."""
        decoded = []
        for member in self.members[i]:
            try:
                decoded.append(decode_jpeg(self.source.read(member), **self.decode_options))
            except (OSError, KeyError, SyntaxError, ValueError, RuntimeError, zipfile.BadZipFile,
                    Image.DecompressionBombError) as err:
                raise DataFormatError(f"{self.source.path}: member {member} of clip {self.clip_ids[i]}: cannot decode ({err})") from err
        shapes = {f.shape for f in decoded}
        if len(shapes) != 1:
            raise DataFormatError(f"{self.source.path}: clip {self.clip_ids[i]}: frames differ in size {sorted(shapes)}")
        return decoded

    def __getitem__(self, i: int):
        if not self.stacked:
            return self.decode_frames(i), int(self.labels[i]), self.clip_ids[i]
        frames = self.read_frames(i)
        return (frames if self.transform is None else self.transform(frames)), int(self.labels[i]), self.clip_ids[i]

    def verify(self) -> list[tuple[str, str]]:
        """Decode every frame. Raises on the first bad clip, or with ``on_bad="skip"`` drops the bad clips
        (adding them to ``skipped``) and returns the newly skipped (clip_id, reason) pairs."""
        bad = []
        for i in range(len(self)):
            try:
                self.read_frames(i)
            except DataFormatError as err:
                self._bad(self.clip_ids[i], str(err))
                bad.append(i)
        bad_set = set(bad)
        keep = [i for i in range(len(self)) if i not in bad_set]
        self.clip_ids = [self.clip_ids[i] for i in keep]
        self.members = [self.members[i] for i in keep]
        self.labels = self.labels[keep]
        return self.skipped[len(self.skipped) - len(bad):]


def _escapes(info: zipfile.ZipInfo, out: Path) -> bool:
    """Whether extracting ``info`` under ``out`` could write elsewhere: absolute path, ``..``, symlink."""
    name = info.filename
    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
    absolute = name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
    return absolute or ".." in Path(name.replace("\\", "/")).parts or is_link or not (out / name).resolve().is_relative_to(out)


def extract_frames(zip_path: str | Path, out_dir: str | Path) -> int:
    """Extract ``frames.zip`` into ``out_dir`` (e.g. DATA/frames); returns the number of files.

    Refuses (``DataFormatError`` naming the member) any absolute path, ``..`` component or symlink, so
    nothing is ever written outside ``out_dir``. Checks every member before writing anything.
    """
    out = Path(out_dir).resolve()
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        for info in infos:
            if _escapes(info, out):
                raise DataFormatError(f"{zip_path}: member {info.filename!r} would be written outside {out}")
        for info in infos:
            archive.extract(info, out)
    return sum(1 for i in infos if not i.is_dir())
