"""Encoders, temporal heads and classifiers, built by name from a ``model_config`` dict.

Every encoder maps a clip [B, T, C, H, W] to tokens [B, T', N, D]; every head maps tokens to
logits [B, num_classes]; :func:`build_model` joins them into a :class:`VideoClassifier`.
"""

from whatnext.models.classifier import VideoClassifier
from whatnext.models.factory import build_encoder, build_model, list_encoders, list_heads
from whatnext.models.pair_direction import PairDirectionHead, sample_frame_pairs

__all__ = [
    "PairDirectionHead",
    "VideoClassifier",
    "build_encoder",
    "build_model",
    "list_encoders",
    "list_heads",
    "sample_frame_pairs",
]
