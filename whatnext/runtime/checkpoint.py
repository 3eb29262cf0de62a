"""Model checkpoints: one self-describing dict per file, read back with ``weights_only=True``.

A checkpoint is ``{"format": 1, "kind": KIND, "model_config": dict, "state_dict": dict,
"meta": dict}``. ``kind`` says what the weights are (``"encoder"`` for an SSL
generation's encoder, ``"classifier"`` for a finetuned member); ``model_config`` is
the dict :func:`whatnext.models.build_model` (or the encoder factory) takes, so any
stage can rebuild the network without being told its architecture again.

Every load goes through :func:`load_weights_file`: whatever the file holds (text, a truncated
zip, a pickle with code, which ``weights_only`` blocks), a failure is a :class:`CheckpointError`
naming the file, never a raw traceback.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import zipfile
from pathlib import Path

import torch

from whatnext.runtime.atomic import save_torch

FORMAT_VERSION = 1
KINDS = ("encoder", "classifier")
# what a file that is not a torch checkpoint at all makes torch.load raise (a text file: KeyError
# of its first byte as an unknown pickle opcode; garbage: any of these)
_UNREADABLE = (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError, KeyError, IndexError,
               ValueError, TypeError, AttributeError, UnicodeDecodeError, struct.error, ImportError)


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


def load_weights_file(path: str | Path, what: str = "checkpoint"):
    """``torch.load(path, weights_only=True)`` on CPU; any failure is a CheckpointError naming the file.

    A pickle that references code (a global outside torch's weights-only allow-list) is reported as
    "refused: not a plain-weights checkpoint"; anything else that does not load as "unreadable or
    truncated". ``what`` names the file's role in the message ("checkpoint", "resume state").
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            blocked = next((line for line in str(err).splitlines() if "GLOBAL" in line), "").strip()
            raise CheckpointError(f"{path}: refused: not a plain-weights {what} ({blocked})") from None
        raise CheckpointError(f"{path}: unreadable or truncated {what} ({_first_line(err)})") from None
    except _UNREADABLE as err:
        raise CheckpointError(f"{path}: unreadable or truncated {what} ({type(err).__name__}: {_first_line(err)})") from None


def _first_line(err: Exception) -> str:
    return next((line.strip() for line in str(err).splitlines() if line.strip()), "")


def load_checkpoint(path: str | Path, expected_kind: str | None = None) -> dict:
    """Load and check a checkpoint: a dict of format 1 with a known ``kind``, a ``model_config`` dict and a
    ``state_dict`` dict. Errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    ckpt = load_weights_file(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a whatnext checkpoint (format {FORMAT_VERSION} expected)")
    missing = [key for key in ("kind", "model_config", "state_dict") if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing} (a whatnext checkpoint has kind, model_config, state_dict, meta)")
    if ckpt["kind"] not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {ckpt['kind']!r} (one of {KINDS})")
    for key in ("model_config", "state_dict"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{path}: {key} must be a dict, got {type(ckpt[key]).__name__}")
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


def load_encoder_weights(model: torch.nn.Module, encoder_state_dict: dict, source: str | Path) -> None:
    """Load an encoder state dict (keys of ``build_encoder(cfg).state_dict()``) into ``model``.

    ``model`` is a classifier (its ``.encoder`` is loaded) or a bare encoder. Weights of another
    architecture or size raise :class:`CheckpointError` naming ``source``.
    """
    load_state_strict(getattr(model, "encoder", model), encoder_state_dict, source)


def load_encoder_checkpoint(model: torch.nn.Module, path: str | Path, encoder_name: str) -> dict:
    """Load the encoder checkpoint at ``path`` into ``model`` after checking it holds ``encoder_name``.

    Returns the checkpoint dict (``model_config``, ``meta``). Errors name the file.
    """
    ckpt = load_checkpoint(path, expected_kind="encoder")
    saved = ckpt["model_config"].get("encoder")
    if saved != encoder_name:
        raise CheckpointError(f"{path}: holds encoder {saved!r}, expected {encoder_name!r}")
    load_encoder_weights(model, ckpt["state_dict"], path)
    return ckpt
