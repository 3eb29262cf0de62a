"""Test-time augmentation: several views per clip, and their probabilities merged back.

``TTAViews`` maps uint8 frames [T, C, H, W] to uint8 views [V, T, C, size, size]: one centre view, or
with ``five_crop`` the four corner crops and the centre crop of the frames resized to
``round(size / crop_fraction)`` (order: top-left, top-right, bottom-left, bottom-right, centre); with
``flip`` the same views mirrored left/right follow (V doubles). ``views.flipped`` (bool [V]) says which.

A model sees a mirrored clip of class c as class ``mirror_permutation()[c]``; ``merge_view_probs``
maps each flipped view's probabilities back through the permutation (columns 18 <-> 19 in the challenge)
before averaging the views. Usage from a DataLoader: frames [B, V, T, C, H, W] -> normalised
(``ClipNormaliser``) -> model on ``.flatten(0, 1)`` -> probs reshaped to [B, V, K] ->
``merge_view_probs(probs, views.flipped)`` (as :func:`whatnext.finetune.evaluation.predict_probs`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from whatnext.data.class_table import load_class_table

TTA_KINDS = ("none", "five_crop")


class TTAViews:
    """uint8 [T, C, H, W] -> uint8 [V, T, C, size, size]; ``flipped`` bool [V] marks mirrored views."""

    def __init__(self, size: int, *, five_crop: bool = True, flip: bool = False, crop_fraction: float = 0.875):
        if five_crop:
            self.resize = v2.Resize(round(size / crop_fraction), antialias=True)
            self.crops = v2.FiveCrop(size)
        else:
            self.resize = v2.Resize(size, antialias=True)
            self.crops = v2.CenterCrop(size)
        self.flip = flip
        n = 5 if five_crop else 1
        self.flipped = torch.tensor([False] * n + [True] * n if flip else [False] * n)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        crops = self.crops(self.resize(tv_tensors.Video(frames)))
        views = torch.stack([c.as_subclass(torch.Tensor) for c in (crops if isinstance(crops, tuple) else (crops,))])
        if self.flip:
            views = torch.cat([views, views.flip(-1)])
        return views


def merge_view_probs(probs: torch.Tensor, flipped: torch.Tensor, mirror_perm: Sequence[int] | None = None) -> torch.Tensor:
    """Average view probabilities [N, V, K] -> [N, K], first mapping flipped views' columns back:
    ``p[:, v, c] <- p[:, v, perm[c]]`` for every flipped view v."""
    if probs.ndim != 3 or probs.shape[1] != len(flipped):
        raise ValueError(f"probs must be [N, V={len(flipped)}, K], got {list(probs.shape)}")
    perm = torch.as_tensor(load_class_table().mirror_permutation() if mirror_perm is None else list(mirror_perm))
    if len(perm) != probs.shape[2]:
        raise ValueError(f"mirror permutation has {len(perm)} classes, probs have {probs.shape[2]}")
    unflipped = torch.where(flipped[None, :, None], probs[:, :, perm], probs)
    return unflipped.mean(dim=1)
