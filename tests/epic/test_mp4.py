"""MP4 writing and reading by index (whatnext.data.mp4): the exact frame comes back whatever the order of the
indices and across keyframes, with x264 and with the MPEG-4 fallback; the bytes repeat; both backends agree
where TorchCodec loads."""

from __future__ import annotations

from fractions import Fraction

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


def test_constant_rate_video_is_numbered_without_the_scan(coded_video):
    video = PyAVFrames(coded_video)
    wanted = [50, 3, 94, 0, 11]
    assert shown_index(video.read(wanted)) == wanted and not video.scanned


def write_gapped(path, n: int, gap_every: int) -> None:
    """An MP4 of ``n`` index frames (a keyframe every 10) at 50 fps with every ``gap_every``-th slot left empty:
    variable rate, frame i still shows i."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(mp4.pyav_codec(), rate=50, options=mp4.encoder_options(10))
        stream.height, stream.width, stream.pix_fmt = 32, 32, mp4.PIXEL_FORMAT
        stream.codec_context.time_base = Fraction(1, 50)
        for i, frame in enumerate(index_frames(n)):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = i + i // (gap_every - 1), Fraction(1, 50)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


@pytest.mark.parametrize("backend_name", ["pyav", pytest.param("torchcodec", marks=pytest.mark.skipif(
    not torchcodec_loads(), reason="TorchCodec finds no FFmpeg libraries here (PyAV only)"))])
def test_variable_rate_video_is_scanned_and_read_exactly(tmp_path, backend_name):
    path = tmp_path / "gapped.MP4"
    write_gapped(path, 60, gap_every=7)
    video = open_mp4(path, backend_name)
    wanted = [50, 3, 3, 59, 0, 11, 10, 31]
    assert len(video) == 60 and shown_index(video.read(wanted)) == wanted and video.scanned


def test_a_frame_off_the_grid_sends_the_reader_to_the_scan(coded_video, monkeypatch):
    """The container's index passed for constant-rate, but the decoded timestamps sit half a frame off."""
    def shifted(stream, constant_rate=mp4.constant_rate):
        grid, keyframes = constant_rate(stream)
        return mp4.GridFrames(grid.start + round(grid.step / 2), grid.step, grid.count), keyframes

    monkeypatch.setattr(mp4, "constant_rate", shifted)
    video = PyAVFrames(coded_video)
    assert not video.scanned
    wanted = [50, 3, 94, 0]
    assert shown_index(video.read(wanted)) == wanted and video.scanned


@pytest.mark.skipif(not torchcodec_loads(), reason="TorchCodec finds no FFmpeg libraries here (PyAV only)")
def test_torchcodec_frame_at_another_time_sends_the_reader_to_exact_mode(tmp_path):
    path = tmp_path / "v.MP4"
    write_mp4(path, index_frames(95), fps=50, gop=10)
    video = open_mp4(path, "torchcodec")
    assert not video.scanned
    video._rate = 25  # approximate mode still seeks to i / 50 s; the frames then show the wrong times for i / 25 s
    wanted = [50, 3, 94, 0]
    assert shown_index(video.read(wanted)) == wanted and video.scanned
