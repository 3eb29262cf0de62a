"""MP4 videos: frames written as H.264 and read back by index, seeking, through TorchCodec where it finds the
system's FFmpeg libraries, else through PyAV (``av``, in the ``models`` extra: its wheels bundle FFmpeg, so a
pip install always has one of the two).

Frames are uint8 RGB. An index is a 0-based position in presentation order (the i-th frame shown), the same
for both backends. A constant-rate stream is numbered without reading the file: frame i at start + i / rate,
from the header (TorchCodec's ``seek_mode="approximate"``) or the container's index (PyAV), and every frame
decoded must show that timestamp; a stream that is not constant-rate, or a frame that shows another timestamp,
sends the reader to a pass over all the packets (TorchCodec's ``seek_mode="exact"``, PyAV's packet scan), which
numbers the frames by timestamp. On opening, that pass reads the whole file (gigabytes for an hour of 1080p);
the constant-rate path reads only the header and index. Reading seeks to the keyframe at or before a wanted
frame and decodes forward from it (PyAV decodes on without a seek when it already stands between that keyframe
and the wanted frame); one decoding thread per reader, as TorchCodec's default.

Writing: H.264 (``libx264``; MPEG-4 part 2 where the FFmpeg has no x264: PyAV picks from :data:`CODECS`,
TorchCodec takes FFmpeg's default for ``.mp4``, the same rule), yuv420p (even sides only), a
keyframe every ``gop`` frames, settings (:func:`encoder_options`) under which the bytes are a function of
the frames and the FFmpeg build (x264 with several threads writes their count into the stream, and its
output then varies from run to run).
"""

from __future__ import annotations

import bisect
import functools
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from whatnext.runtime.atomic import atomic_path

CODECS = ("libx264", "mpeg4")  # in order of preference
PIXEL_FORMAT = "yuv420p"


def encoder_options(gop: int) -> dict[str, str]:
    """FFmpeg encoder options, the same for both backends: a keyframe every ``gop`` frames, one thread, and no
    macroblock-tree rate control (with it, PyAV's x264 wrote 5 different streams in 100 encodes of the same
    32 px frames in one process; without it, 1 in 300). The x264 option is ignored by MPEG-4 part 2."""
    return {"g": str(gop), "threads": "1", "x264-params": "mbtree=0"}


@functools.cache
def torchcodec_loads() -> bool:
    """Whether TorchCodec finds FFmpeg libraries: it encodes and decodes a 2-frame MP4 in memory."""
    try:
        from torchcodec.decoders import VideoDecoder
        from torchcodec.encoders import VideoEncoder

        data = VideoEncoder(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), frame_rate=25).to_tensor("mp4")
        return len(VideoDecoder(data)) == 2
    except (ImportError, OSError, RuntimeError, ValueError):
        return False


def backend() -> str:
    """``torchcodec`` where it loads, else ``pyav``; RuntimeError where neither is there."""
    if torchcodec_loads():
        return "torchcodec"
    try:
        import av  # noqa: F401
    except ImportError:
        raise RuntimeError("no MP4 codec: TorchCodec finds no FFmpeg libraries and PyAV is not installed "
                           "(pip install av, part of the models extra)") from None
    return "pyav"


def pyav_codec() -> str:
    """The first of :data:`CODECS` that PyAV's FFmpeg encodes."""
    import av

    for codec in CODECS:
        if codec in av.codecs_available:
            return codec
    raise RuntimeError(f"PyAV's FFmpeg encodes none of {CODECS}")


def write_mp4(path: Path, frames: np.ndarray, fps: int, gop: int, backend_name: str | None = None) -> None:
    """Write ``frames`` uint8 [N, H, W, 3] (H, W even) to ``path`` at ``fps``, a keyframe every ``gop`` frames,
    atomically (a temporary renamed onto ``path``)."""
    n, h, w, c = frames.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"{path}: MP4 frames must be RGB with even sides ({PIXEL_FORMAT}), got {h}x{w}x{c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if (backend_name or backend()) == "torchcodec":
            from torchcodec.encoders import VideoEncoder

            mp4 = Path(str(tmp) + ".mp4")  # TorchCodec picks the container from the extension
            try:
                VideoEncoder(torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), frame_rate=fps).to_file(
                    str(mp4), pixel_format=PIXEL_FORMAT, extra_options=encoder_options(gop))
                mp4.rename(tmp)
            finally:
                mp4.unlink(missing_ok=True)
        else:
            _write_pyav(Path(tmp), frames, fps, gop)


def _write_pyav(path: Path, frames: np.ndarray, fps: int, gop: int) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(pyav_codec(), rate=fps, options=encoder_options(gop))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = PIXEL_FORMAT
        stream.codec_context.time_base = Fraction(1, fps)
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def open_mp4(path: Path, backend_name: str | None = None, scan: bool = False):
    """A reader of ``path`` with ``len()`` (frames), ``read(indices)`` and ``close()``: :class:`TorchCodecFrames`
    or :class:`PyAVFrames`; ``scan``: number the frames by a pass over all packets from the start, constant rate
    or not. Errors: OSError, RuntimeError or ValueError (a missing or unreadable file)."""
    if (backend_name or backend()) == "torchcodec":
        return TorchCodecFrames(path, scan)
    return PyAVFrames(path, scan)


class TorchCodecFrames:
    """An MP4's frames by 0-based index through TorchCodec. A stream whose header gives its frame count N, a
    rate r and a duration of N / r (no slot left empty), starting at 0 s, opens in approximate seek mode (frame
    i at i / r, no pass over the file); every frame read must then show a pts within :data:`TOLERANCE_S` of
    i / r, and one that does not reopens the video in exact mode (all packets scanned, the frames numbered by
    pts) and reads again. Other streams open in exact mode."""

    def __init__(self, path: Path, scan: bool = False):
        self.path = path
        self._open(scan)

    def _open(self, scan: bool) -> None:
        from torchcodec.decoders import VideoDecoder

        if not scan:
            self._decoder = VideoDecoder(str(self.path), seek_mode="approximate")
            meta = self._decoder.metadata
            count, self._rate, duration = (meta.num_frames_from_header, meta.average_fps_from_header,
                                           meta.duration_seconds_from_header)
            if (count and self._rate and duration and abs(duration * self._rate - count) < 0.5
                    and not meta.begin_stream_seconds_from_header):
                self.scanned = False
                return
        self._decoder = VideoDecoder(str(self.path), seek_mode="exact")
        self.scanned = True

    def __len__(self) -> int:
        return len(self._decoder)

    def read(self, indices: list[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W]; IndexError for an index outside 0..len - 1."""
        check_indices(indices, len(self))
        frames = self._decoder.get_frames_at(list(indices))
        if not self.scanned:
            slots = torch.tensor(indices, dtype=torch.float64) / self._rate
            if (frames.pts_seconds - slots).abs().max() > TOLERANCE_S:
                self._open(scan=True)
                return self.read(indices)
        return frames.data

    def close(self) -> None:
        """Free the decoder and its file handle (TorchCodec closes them when the decoder is freed)."""
        self._decoder = None


class PyAVFrames:
    """An MP4's frames by 0-based index through PyAV. A constant-rate stream (:func:`constant_rate`: read off the
    container's index, no pass over the file) numbers its frames on a grid, frame i at pts start + i x step;
    every decoded frame's pts must then be on it (within a tick), and one that is not makes the reader scan the
    packets and read again. Other streams are scanned when opened: the packets' timestamps number the frames
    and locate the keyframes."""

    def __init__(self, path: Path, scan: bool = False):
        self.path = path
        self._open(scan)

    def _open(self, scan: bool) -> None:
        import av

        try:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # as TorchCodec's default; DataLoader workers share the cores
            grid = None if scan else constant_rate(self._stream)
            self._timeline, self._keyframes = grid or scan_packets(self._container, self._stream)
        except (av.FFmpegError, IndexError) as err:
            raise RuntimeError(f"PyAV cannot open it ({err})") from None
        self.scanned = grid is None
        self._frames = None  # the decode iterator after the last seek
        self._at = -1  # index of the frame it decoded last

    def close(self) -> None:
        """Free the decoder and close the file."""
        self._frames = None
        self._container.close()

    def __len__(self) -> int:
        return len(self._timeline)

    def read(self, indices: list[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W]; IndexError for an index outside 0..len - 1."""
        import av

        check_indices(indices, len(self))
        got = {}
        try:
            for wanted in sorted(set(indices)):
                got[wanted] = self._decode(wanted)
        except OffGrid:
            self.close()
            self._open(scan=True)
            return self.read(indices)
        except av.FFmpegError as err:
            self._frames = None  # the next read seeks afresh
            raise RuntimeError(f"PyAV cannot decode it ({err})") from None
        return torch.stack([got[i] for i in indices])

    def _decode(self, wanted: int) -> torch.Tensor:
        keyframe = self._keyframes[bisect.bisect_right(self._keyframes, wanted) - 1]
        if self._frames is None or not keyframe - 1 <= self._at < wanted:  # behind us, or a keyframe nearer than us
            self._container.seek(self._timeline.pts(keyframe), stream=self._stream, backward=True)
            self._frames = self._container.decode(self._stream)
            self._at = keyframe - 1
        for frame in self._frames:
            at = self._timeline.index(frame.pts)
            if at is None and not self.scanned:
                raise OffGrid
            self._at = self._at if at is None else at
            if self._at == wanted:
                return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
            if self._at > wanted:
                break
        self._frames = None
        if not self.scanned:
            raise OffGrid
        raise RuntimeError(f"frame {wanted} did not come out of the decoder (seeking from keyframe {keyframe})")


TOLERANCE_S = 1e-3  # TorchCodec gives no time base: a ms, above a tick of any time base of 1 / 1000 s or finer


class OffGrid(Exception):
    """A decoded frame off the constant-rate grid, or a wanted frame that did not come out on it."""


class ScannedFrames:
    """A scanned stream's timeline: frame pts in presentation order, from a pass over the packets; ``pts(i)``,
    ``index(pts)`` (None for a pts no packet had)."""

    def __init__(self, pts: list[int]):
        self._pts, self._index = pts, {p: i for i, p in enumerate(pts)}

    def __len__(self) -> int:
        return len(self._pts)

    def pts(self, i: int) -> int:
        return self._pts[i]

    def index(self, pts: int | None) -> int | None:
        return self._index.get(pts)


class GridFrames:
    """A constant-rate stream's timeline: ``count`` frames, frame i at pts ``start`` + i x ``step`` (time-base
    ticks, ``step`` a Fraction); ``pts(i)``, ``index(pts)`` (None for a pts a tick or more off the grid)."""

    def __init__(self, start: int, step: Fraction, count: int):
        self.start, self.step, self.count = start, step, count

    def __len__(self) -> int:
        return self.count

    def pts(self, i: int) -> int:
        return self.start + round(i * self.step)

    def index(self, pts: int | None) -> int | None:
        if pts is None:
            return None
        i = round((pts - self.start) / self.step)
        return i if 0 <= i < self.count and abs(pts - self.start - i * self.step) < 1 else None


def scan_packets(container, stream) -> tuple[ScannedFrames, list[int]]:
    """The frames and keyframe indices of ``stream`` from a pass over all its packets (the whole file is read)."""
    packets = sorted((p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None)
    keyframes = sorted({0} | {i for i, (_, key) in enumerate(packets) if key})  # 0: a seek to the start
    return ScannedFrames([pts for pts, _ in packets]), keyframes


def constant_rate(stream) -> tuple[GridFrames, list[int]] | None:
    """The grid and keyframe indices of a constant-rate ``stream`` from the container's index (an MP4's sample
    table, read when it was opened), or None unless: the index has the header's frame count, none of them
    discarded (an edit list), their decode timestamps step by 1 / average rate to within a tick, and the stream
    lasts that many steps. A keyframe's index in decode order is its frame index (closed GOPs; where it is not,
    only speed suffers, as the decoded pts decide)."""
    rate, base, count, entries = stream.average_rate, stream.time_base, stream.frames, stream.index_entries
    if not rate or not base or not count or len(entries) != count or stream.start_time is None:
        return None
    step = 1 / (rate * base)  # ticks per frame
    num, den = step.numerator, step.denominator
    first, keyframes = entries[0].timestamp, []
    for k, entry in enumerate(entries):  # integer arithmetic: an hour at 60 fps is 216,000 entries
        if entry.is_discard or abs(den * (entry.timestamp - first) - k * num) >= den:
            return None
        if entry.is_keyframe:
            keyframes.append(k)
    if stream.duration is not None and abs(stream.duration - count * step) >= 1:
        return None
    return GridFrames(stream.start_time, step, count), sorted({0} | set(keyframes))


def check_indices(indices: list[int], frames: int) -> None:
    bad = [i for i in indices if not 0 <= i < frames]
    if bad:
        raise IndexError(f"frame indices {bad} outside 0..{frames - 1}")
