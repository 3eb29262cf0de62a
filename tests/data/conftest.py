"""Hand-made data dirs for the reader's tests: every frame's colour is known."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def jpeg_bytes(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), rgb, np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def frame_colour(clip: int, k: int) -> tuple[int, int, int]:
    """A distinct flat colour per (clip, frame) so a test can tell frames apart after decoding."""
    return (40 * k + 20, (37 * clip) % 200 + 20, 100)


def clip_members(split: str, clip: int, label: int | None, frames=range(4)) -> dict[str, bytes]:
    folder = f"test/video_{clip}" if label is None else f"{split}/class_{label}/video_{clip}"
    return {f"{folder}/frame_{k}.jpg": jpeg_bytes(frame_colour(clip, k)) for k in frames}


@pytest.fixture
def make_data_dir(tmp_path):
    """Build a data dir: ``make(train=[(id, label)], val=[...], test=[ids], members=None, csv=None)``.

    By default every listed clip gets 4 frames; ``members`` overrides the zip content (dict member ->
    bytes), ``csv`` overrides CSV texts (dict split -> text).
    """

    def make(train=(), val=(), test=(), members=None, csv=None) -> Path:
        if members is None:
            members = {}
            for split, rows in (("train", train), ("val", val)):
                for clip, label in rows:
                    members.update(clip_members(split, clip, label))
            for clip in test:
                members.update(clip_members("test", clip, None))
        with zipfile.ZipFile(tmp_path / "frames.zip", "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        texts = {
            "train": "video_id,label\n" + "".join(f"{c},{lab}\n" for c, lab in train),
            "val": "video_id,label\n" + "".join(f"{c},{lab}\n" for c, lab in val),
            "test": "video_id\n" + "".join(f"{c}\n" for c in test),
            **(csv or {}),
        }
        for split, text in texts.items():
            (tmp_path / f"{split}.csv").write_text(text)
        return tmp_path

    return make
