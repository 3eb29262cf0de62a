"""Moving encoder weights between an SSL generation and a classifier, with clear errors."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from whatnext.runtime.checkpoint import CheckpointError, load_checkpoint, load_state_strict


def load_encoder_weights(model: nn.Module, encoder_state_dict: dict, source: str | Path) -> None:
    """Load an encoder state dict (keys of ``build_encoder(cfg).state_dict()``) into ``model``.

    ``model`` is a classifier (its ``.encoder`` is loaded) or a bare encoder. Weights of another
    architecture or size raise :class:`CheckpointError` naming ``source``.
    """
    load_state_strict(getattr(model, "encoder", model), encoder_state_dict, source)


def load_encoder_checkpoint(model: nn.Module, path: str | Path, encoder_name: str) -> dict:
    """Load the encoder checkpoint at ``path`` into ``model`` after checking it holds ``encoder_name``.

    Returns the checkpoint dict (``model_config``, ``meta``). Errors name the file.
    """
    ckpt = load_checkpoint(path, expected_kind="encoder")
    saved = ckpt["model_config"].get("encoder")
    if saved != encoder_name:
        raise CheckpointError(f"{path}: holds encoder {saved!r}, expected {encoder_name!r}")
    load_encoder_weights(model, ckpt["state_dict"], path)
    return ckpt
