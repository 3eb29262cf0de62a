"""Logging for the CLIs: INFO to stderr, and to a file when ``--log FILE`` is given."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def cli_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> Iterator[None]:
    """Within the block, the root logger writes ``level`` and above to stderr and, if set, appends to ``log_file``.

    The handlers are removed (and the file closed) when the block exits.
    """
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    previous_level = root.level
    root.setLevel(level)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(previous_level)
