"""The MP4 readers a process holds open, at most ``capacity`` of them, the least recently read closed first.

An open reader (:func:`whatnext.data.mp4.open_mp4`) holds a file handle, the decoder's reference frames and
the stream's frame index; a 1080p decoder is tens of MB, so a DataLoader worker that kept one per EPIC video
(~700) would grow without bound. Under the cap, shuffled segments over many videos make most reads reopen a
video, which costs its header and index for a constant-rate stream (:mod:`whatnext.data.mp4`) and a pass over
the whole file otherwise. Readers never cross processes: a forked DataLoader worker drops the readers it
inherited (its parent goes on using them) and opens its own, and a pickled pool (spawned workers) travels
empty.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from whatnext.data.mp4 import open_mp4

OPEN_VIDEOS = 8  # readers held open per pool and process


class OpenVideos:
    """Open readers by path, at most ``capacity``; ``opener(path)`` opens one (default :func:`open_mp4`) and
    each has ``close()``."""

    def __init__(self, capacity: int = OPEN_VIDEOS, opener: Callable = open_mp4):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 open video, got {capacity}")
        self.capacity, self.opener = capacity, opener
        self._open: OrderedDict[Path, object] = OrderedDict()  # least recently read first
        self._pid = os.getpid()

    def get(self, path: Path):
        """The reader of ``path``, opened (after closing the least recently read one, at capacity) if it is not
        open; the opener's errors pass through."""
        if self._pid != os.getpid():  # a forked worker: the inherited readers are its parent's
            self._open, self._pid = OrderedDict(), os.getpid()
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        while len(self._open) >= self.capacity:
            self._open.popitem(last=False)[1].close()
        self._open[path] = reader = self.opener(path)
        return reader

    def paths(self) -> list[Path]:
        """The open videos, least recently read first."""
        return list(self._open)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": OrderedDict(), "_pid": None}
