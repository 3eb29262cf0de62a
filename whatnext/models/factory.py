"""Build encoders and classifiers from a plain, JSON-able ``model_config`` dict.

``model_config`` keys: ``encoder`` (name, see :func:`list_encoders`), ``head`` (name, see
:func:`list_heads`; classifiers only), ``num_classes`` (default 33), ``img_size`` (px, default 224),
``num_frames`` (default 4), ``encoder_kwargs`` / ``head_kwargs`` (overrides passed to the builders,
e.g. ``{"drop_path_rate": 0.1}`` / ``{"dropout": 0.5}``), ``ssl`` (the SSL method's settings, read by its
builder in :mod:`whatnext.ssl.methods`). Any other key is an error.
"""

from __future__ import annotations

from torch import nn

from whatnext.models import encoders_2d, encoders_conv, heads, vit_mae2d, vit_tubelet  # noqa: F401  (registration)
from whatnext.models.classifier import VideoClassifier
from whatnext.models.registry import ENCODERS, HEADS

CONFIG_KEYS = {"encoder", "head", "num_classes", "img_size", "num_frames", "encoder_kwargs", "head_kwargs", "ssl"}
DEFAULTS = {"num_classes": 33, "img_size": 224, "num_frames": 4}


def list_encoders() -> list[str]:
    return ENCODERS.names()


def list_heads() -> list[str]:
    return HEADS.names()


def _check_config(model_config: dict, required: tuple[str, ...]) -> dict:
    if not isinstance(model_config, dict):
        raise ValueError(f"model_config must be a dict, got {type(model_config).__name__}")
    unknown = set(model_config) - CONFIG_KEYS
    if unknown:
        raise ValueError(f"model_config has unknown keys {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}")
    missing = [key for key in required if key not in model_config]
    if missing:
        raise ValueError(f"model_config lacks {missing}")
    return DEFAULTS | model_config


def _call(builder, kind: str, name: str, **kwargs) -> nn.Module:
    try:
        return builder(**kwargs)
    except TypeError as err:  # an override the builder does not take
        raise ValueError(f"{kind} {name!r}: bad arguments ({err})") from None


def build_encoder(model_config: dict) -> nn.Module:
    """Encoder alone: [B, T, C, H, W] -> tokens [B, T', N, D]; attributes ``embed_dim`` (D), ``num_steps`` (T'), ``family``."""
    cfg = _check_config(model_config, ("encoder",))
    return _call(ENCODERS.get(cfg["encoder"]), "encoder", cfg["encoder"], img_size=cfg["img_size"],
                 num_frames=cfg["num_frames"], **cfg.get("encoder_kwargs", {}))


def build_model(model_config: dict) -> VideoClassifier:
    """Classifier: [B, T, C, H, W] -> logits [B, num_classes] (see :class:`VideoClassifier`)."""
    cfg = _check_config(model_config, ("encoder", "head"))
    head_builder = HEADS.get(cfg["head"])
    encoder = build_encoder(model_config)
    head = _call(head_builder, "head", cfg["head"], dim=encoder.embed_dim, num_steps=encoder.num_steps,
                 num_classes=cfg["num_classes"], **cfg.get("head_kwargs", {}))
    return VideoClassifier(encoder, head, dict(model_config))
