"""The motion residual a clip-residual encoder sees: each frame minus its clip's mean frame."""

from __future__ import annotations

import torch


def minus_clip_mean(clips: torch.Tensor) -> torch.Tensor:
    """[B, T, C, H, W] -> the same shape, each frame minus the mean of its clip's T frames: what is static
    over the clip cancels, what moves stays."""
    return clips - clips.mean(dim=1, keepdim=True)
