"""Atomic file writes: write a temporary file, then rename it onto the target.

A reader never sees a half-written file, and a job killed mid-write leaves the previous version (or
nothing) at the target. Temporaries live in a hidden folder beside the target,
``<folder>/.atomic-tmp/<name>~<host>~<pid>~<random>.tmp`` (same file system, so the rename is atomic),
never beside the target itself: a ``kill -9``, which skips every ``finally``, can orphan one there but
cannot leave litter next to the outputs. The next write of the same target sweeps its stale temporaries
(writer process gone on this host, or untouched for :data:`STALE_AFTER_S` when written from another
host), and the folder is removed whenever it is left empty. :func:`remove_temporaries` removes every
temporary of a target, for a caller that is about to delete the target's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

TMP_DIR = ".atomic-tmp"
STALE_AFTER_S = 3600.0  # a temporary from another host untouched this long belongs to a dead writer
_SEP = "~"


def temp_dir(target: Path) -> Path:
    """The folder holding ``target``'s temporaries."""
    return target.parent / TMP_DIR


def _host() -> str:
    return socket.gethostname().replace(_SEP, "-").replace(os.sep, "-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _temporaries(target: Path) -> Iterator[tuple[Path, str, int]]:
    """``(path, host, pid)`` of every temporary of ``target`` in its temporaries folder."""
    folder = temp_dir(target)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        name = path.name
        if not (name.startswith(target.name + _SEP) and name.endswith(".tmp")):
            continue
        parts = name[len(target.name) + 1 : -len(".tmp")].split(_SEP)
        if len(parts) == 3 and parts[1].isdigit():
            yield path, parts[0], int(parts[1])


def _is_stale(path: Path, host: str, pid: int) -> bool:
    if host == _host():
        return pid != os.getpid() and not _pid_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def _remove_dir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def sweep_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` left by writers that are gone; returns what was removed."""
    target = Path(target)
    removed = []
    for path, host, pid in list(_temporaries(target)):
        if _is_stale(path, host, pid):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def remove_temporaries(target: str | os.PathLike) -> None:
    """Remove every temporary of ``target``, live or not (its writer must be done), and the temporaries
    folder if that leaves it empty. Also removes the ``.<name>.*.tmp`` files earlier versions wrote
    beside the target."""
    target = Path(target)
    for path, _, _ in list(_temporaries(target)):
        path.unlink(missing_ok=True)
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        path.unlink(missing_ok=True)
    _remove_dir_if_empty(temp_dir(target))


def _new_temporary(target: Path, folder: Path, attempts: int = 3) -> Path:
    """Create an empty temporary for ``target`` in ``folder``; retried when another writer removed the
    folder (left empty by its own write) between our mkdir and mkstemp."""
    prefix = f"{target.name}{_SEP}{_host()}{_SEP}{os.getpid()}{_SEP}"
    for attempt in range(attempts):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
            break
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets open()'s usual mode
    return Path(name)


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for ``target`` (in :func:`temp_dir`); rename it onto ``target`` on success.

    The caller writes the whole file to the yielded path. Stale temporaries of the same target are swept
    first. On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    folder = temp_dir(target)
    sweep_stale_temporaries(target)
    tmp = _new_temporary(target, folder)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        _remove_dir_if_empty(folder)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``target`` when the block exits cleanly."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(target, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def save_torch(obj: Any, target: str | os.PathLike) -> None:
    """``torch.save`` atomically (checkpoints, encoder weights)."""
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)
