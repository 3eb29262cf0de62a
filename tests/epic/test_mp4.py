"""MP4 writing and reading by index (whatnext.data.mp4): the exact frame comes back whatever the order of the
indices and across keyframes, with x264 and with the MPEG-4 fallback; the bytes repeat; both backends agree
where TorchCodec loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whatnext.data import mp4
from whatnext.data.mp4 import PyAVFrames, open_mp4, torchcodec_loads, write_mp4

STRIPES, LEVELS = 4, 16  # a frame's index in base 16, one digit per 8-px grey stripe


def index_frames(n: int) -> np.ndarray:
    """uint8 [n, 32, 32, 3]: frame i shows i as STRIPES grey stripes of level 16 x digit + 8."""
    frames = np.zeros((n, 32, 32, 3), np.uint8)
    for i in range(n):
        for s in range(STRIPES):
            frames[i, :, 8 * s:8 * s + 8] = 16 * (i // LEVELS ** (STRIPES - 1 - s) % LEVELS) + 8
    return frames


def shown_index(frames: torch.Tensor) -> list[int]:
    """The indices that frames uint8 [n, 3, 32, 32] show (stripe centres read back, nearest level)."""
    digits = ((frames[:, :, 8:24, 2::8][..., :STRIPES].float().mean((1, 2)) - 8) / 16).round().long()
    return (digits * LEVELS ** torch.arange(STRIPES - 1, -1, -1)).sum(1).tolist()


@pytest.fixture(params=["libx264", "mpeg4"])
def coded_video(request, tmp_path, monkeypatch):
    """An MP4 of 95 index frames, a keyframe every 10, written by PyAV with the codec named."""
    monkeypatch.setattr(mp4, "CODECS", (request.param,))
    path = tmp_path / f"{request.param}.MP4"
    write_mp4(path, index_frames(95), fps=50, gop=10, backend_name="pyav")
    return path


def test_pyav_reads_the_exact_frames_in_any_order(coded_video):
    video = PyAVFrames(coded_video)
    assert len(video) == 95
    wanted = [50, 3, 3, 94, 0, 11, 10, 60, 59, 9, 2]  # backwards, repeated, across keyframes, both ends
    frames = video.read(wanted)
    assert frames.shape == (len(wanted), 3, 32, 32) and frames.dtype == torch.uint8
    assert shown_index(frames) == wanted
    assert shown_index(video.read(list(range(95)))) == list(range(95))


def test_decoded_frames_are_close_to_the_written_ones(coded_video):
    written = torch.from_numpy(index_frames(95)).permute(0, 3, 1, 2).float()
    decoded = PyAVFrames(coded_video).read(list(range(95))).float()
    assert (decoded - written).abs().mean() < 3


def test_index_outside_the_video(coded_video):
    with pytest.raises(IndexError, match=r"frame indices \[95\] outside 0..94"):
        PyAVFrames(coded_video).read([3, 95])


def test_unreadable_file_named(tmp_path):
    bad = tmp_path / "bad.MP4"
    bad.write_bytes(b"not a video")
    with pytest.raises(RuntimeError, match="PyAV cannot open it"):
        PyAVFrames(bad)


def test_writes_repeat_byte_for_byte(tmp_path):
    for name in ("a.MP4", "b.MP4"):
        write_mp4(tmp_path / name, index_frames(30), fps=50, gop=10, backend_name="pyav")
    assert (tmp_path / "a.MP4").read_bytes() == (tmp_path / "b.MP4").read_bytes()
    assert not (tmp_path / ".atomic-tmp").exists()


def test_odd_sides_refused(tmp_path):
    with pytest.raises(ValueError, match="even sides"):
        write_mp4(tmp_path / "odd.MP4", np.zeros((4, 17, 16, 3), np.uint8), fps=50, gop=10)


@pytest.mark.skipif(not torchcodec_loads(), reason="TorchCodec finds no FFmpeg libraries here (PyAV only)")
def test_backends_read_the_same_frames(tmp_path):
    path = tmp_path / "v.MP4"
    write_mp4(path, index_frames(95), fps=50, gop=10)
    wanted = [50, 3, 3, 94, 0, 11, 10, 60]
    torchcodec, pyav = open_mp4(path, "torchcodec"), open_mp4(path, "pyav")
    assert len(torchcodec) == len(pyav) == 95
    a, b = torchcodec.read(wanted), pyav.read(wanted)
    assert shown_index(a) == shown_index(b) == wanted
    assert (a.float() - b.float()).abs().mean() < 1
