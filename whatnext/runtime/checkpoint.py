"""Model checkpoints: one self-describing dict per file, read back with ``weights_only=True``.

A checkpoint is ``{"format": 1, "kind": KIND, "model_config": dict, "state_dict": dict,
"meta": dict}``. ``kind`` says what the weights are (``"encoder"`` for an SSL
generation's encoder, ``"classifier"`` for a finetuned member); ``model_config`` is
the dict :func:`whatnext.models.build_model` (or the encoder factory) takes, so any
stage can rebuild the network without being told its architecture again.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import torch

from whatnext.runtime.atomic import save_torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or is not what the caller expects."""


def save_checkpoint(path: str | Path, *, kind: str, model_config: dict, state_dict: dict, meta: dict | None = None) -> None:
    """Write a checkpoint atomically."""
    save_torch(
        {
            "format": FORMAT_VERSION,
            "kind": kind,
            "model_config": model_config,
            "state_dict": state_dict,
            "meta": meta or {},
        },
        path,
    )


def load_checkpoint(path: str | Path, expected_kind: str | None = None) -> dict:
    """Load and check a checkpoint; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a whatnext checkpoint (format {FORMAT_VERSION} expected)")
    if expected_kind is not None and ckpt["kind"] != expected_kind:
        raise CheckpointError(f"{path}: holds a {ckpt['kind']!r} checkpoint, expected {expected_kind!r}")
    return ckpt


def load_state_strict(module: torch.nn.Module, state_dict: dict, source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error naming the source and the mismatch."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise CheckpointError(f"{source}: weights do not fit {type(module).__name__} (another architecture?): {' '.join(first)}") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (provenance of a parent checkpoint, resume fingerprints)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
