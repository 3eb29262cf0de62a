"""The pool of open MP4 readers (whatnext.data.open_videos): at most ``capacity`` open, the least recently read
closed (with its file handle), the right frames after a reopen, and nothing open crosses a pickle or a fork."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.epic.test_mp4 import index_frames, shown_index
from whatnext.data import open_videos as pool_module
from whatnext.data.epic_dataset import VideoFrames
from whatnext.data.mp4 import write_mp4
from whatnext.data.open_videos import OpenVideos


class FakeReader:
    def __init__(self, path: Path, log: list):
        self.path, self.log = path, log
        log.append(("open", path.name))

    def close(self) -> None:
        self.log.append(("close", self.path.name))


@pytest.fixture
def log() -> list:
    return []


@pytest.fixture
def fake_pool(log) -> OpenVideos:
    return OpenVideos(capacity=2, opener=lambda path: FakeReader(path, log))


def test_the_least_recently_read_is_closed_at_capacity(fake_pool, log):
    a, b, c = Path("a"), Path("b"), Path("c")
    for path in (a, b, a, c):  # b was read less recently than a when c comes
        fake_pool.get(path)
    assert fake_pool.paths() == [a, c]
    assert log == [("open", "a"), ("open", "b"), ("close", "b"), ("open", "c")]


def test_an_open_reader_is_reused(fake_pool, log):
    assert fake_pool.get(Path("a")) is fake_pool.get(Path("a"))
    assert log == [("open", "a")]


def test_capacity_below_one_refused():
    with pytest.raises(ValueError, match="at least 1 open video"):
        OpenVideos(capacity=0)


def test_a_forked_worker_opens_its_own(fake_pool, log, monkeypatch):
    inherited = fake_pool.get(Path("a"))
    monkeypatch.setattr(pool_module.os, "getpid", lambda: -1)
    assert fake_pool.get(Path("a")) is not inherited
    assert log == [("open", "a"), ("open", "a")]  # the parent's reader is left alone, not closed


@pytest.fixture(scope="module")
def offset_videos(tmp_path_factory) -> list[Path]:
    """Three 40-frame MP4s; video v's frame i (0-based) shows 100 v + i."""
    folder = tmp_path_factory.mktemp("videos")
    frames = index_frames(340)
    paths = [folder / f"v{v}.MP4" for v in range(3)]
    for v, path in enumerate(paths):
        write_mp4(path, frames[100 * v:100 * v + 40], fps=50, gop=10)
    return paths


def open_mp4_files() -> int:
    """How many of this process's file descriptors point at an .MP4."""
    fds = Path("/proc/self/fd")
    return sum(os.path.realpath(fd).endswith(".MP4") for fd in fds.iterdir())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors through /proc")
def test_reads_stay_exact_with_more_videos_than_capacity(offset_videos):
    before = open_mp4_files()
    pool = OpenVideos(capacity=2)
    videos = [VideoFrames(None, path, pool) for path in offset_videos]
    for v in (0, 1, 2, 0, 2, 1, 0):  # every read after the second evicts or reuses
        wanted = [1, 17, 40]  # 1-based
        assert shown_index(videos[v].read(wanted)) == [100 * v + k - 1 for k in wanted]
        assert len(pool.paths()) <= 2 and open_mp4_files() - before <= 2
    assert pool.paths() == [offset_videos[1], offset_videos[0]]


def test_pickling_drops_the_open_readers_but_keeps_the_shared_pool(offset_videos):
    pool = OpenVideos(capacity=2)
    videos = [VideoFrames(None, path, pool) for path in offset_videos[:2]]
    for video in videos:
        video.read([1])
    copies = pickle.loads(pickle.dumps(videos))
    assert copies[0].open_videos is copies[1].open_videos and copies[0].open_videos.paths() == []
    assert shown_index(copies[1].read([5])) == [104]
    assert pool.paths() == offset_videos[:2]  # the original keeps its own
