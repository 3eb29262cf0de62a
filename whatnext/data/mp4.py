"""MP4 videos: frames written as H.264 and read back by index, seeking, through TorchCodec where it finds the
system's FFmpeg libraries, else through PyAV (``av``, in the ``models`` extra: its wheels bundle FFmpeg, so a
pip install always has one of the two).

Frames are uint8 RGB. An index is a 0-based position in presentation order (the i-th frame shown), the same
for both backends: TorchCodec's ``seek_mode="exact"`` scans the packets once and numbers the frames by
timestamp, and :class:`PyAVFrames` does the same scan. Reading seeks to the keyframe at or before a wanted
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


def open_mp4(path: Path, backend_name: str | None = None):
    """A reader of ``path`` with ``len()`` (frames) and ``read(indices)``: :class:`TorchCodecFrames` or
    :class:`PyAVFrames`. Errors: OSError, RuntimeError or ValueError (a missing or unreadable file)."""
    if (backend_name or backend()) == "torchcodec":
        return TorchCodecFrames(path)
    return PyAVFrames(path)


class TorchCodecFrames:
    """An MP4's frames by 0-based index through TorchCodec, exact seek mode."""

    def __init__(self, path: Path):
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self._decoder = VideoDecoder(str(path), seek_mode="exact")

    def __len__(self) -> int:
        return len(self._decoder)

    def read(self, indices: list[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W]; IndexError for an index outside 0..len - 1."""
        check_indices(indices, len(self))
        return self._decoder.get_frames_at(list(indices)).data

    def close(self) -> None:
        """Free the decoder and its file handle (TorchCodec closes them when the decoder is freed)."""
        self._decoder = None


class PyAVFrames:
    """An MP4's frames by 0-based index through PyAV: the packets' timestamps, scanned once when opened, number
    the frames and locate the keyframes."""

    def __init__(self, path: Path):
        import av

        self.path = path
        try:
            self._container = av.open(str(path))
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # as TorchCodec's default; DataLoader workers share the cores
            packets = [(p.pts, p.is_keyframe) for p in self._container.demux(self._stream) if p.pts is not None]
        except (av.FFmpegError, IndexError) as err:
            raise RuntimeError(f"PyAV cannot open it ({err})") from None
        packets.sort()
        self._pts = [pts for pts, _ in packets]
        self._index = {pts: i for i, pts in enumerate(self._pts)}
        self._keyframes = sorted({0} | {i for i, (_, key) in enumerate(packets) if key})  # 0: a seek to the start
        self._frames = None  # the decode iterator after the last seek
        self._at = -1  # index of the frame it decoded last

    def close(self) -> None:
        """Free the decoder and close the file."""
        self._frames = None
        self._container.close()

    def __len__(self) -> int:
        return len(self._pts)

    def read(self, indices: list[int]) -> torch.Tensor:
        """uint8 [len(indices), 3, H, W]; IndexError for an index outside 0..len - 1."""
        import av

        check_indices(indices, len(self))
        got = {}
        try:
            for wanted in sorted(set(indices)):
                got[wanted] = self._decode(wanted)
        except av.FFmpegError as err:
            self._frames = None  # the next read seeks afresh
            raise RuntimeError(f"PyAV cannot decode it ({err})") from None
        return torch.stack([got[i] for i in indices])

    def _decode(self, wanted: int) -> torch.Tensor:
        keyframe = self._keyframes[bisect.bisect_right(self._keyframes, wanted) - 1]
        if self._frames is None or not keyframe - 1 <= self._at < wanted:  # behind us, or a keyframe nearer than us
            self._container.seek(self._pts[keyframe], stream=self._stream, backward=True)
            self._frames = self._container.decode(self._stream)
            self._at = keyframe - 1
        for frame in self._frames:
            self._at = self._index.get(frame.pts, self._at)
            if self._at == wanted:
                return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
            if self._at > wanted:
                break
        self._frames = None
        raise RuntimeError(f"frame {wanted} did not come out of the decoder (seeking from keyframe {keyframe})")


def check_indices(indices: list[int], frames: int) -> None:
    bad = [i for i in indices if not 0 <= i < frames]
    if bad:
        raise IndexError(f"frame indices {bad} outside 0..{frames - 1}")
