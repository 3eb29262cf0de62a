"""Clip-coherent geometric transforms, run in the data loaders: uint8 frames [T, C, H, W] -> uint8 [T, C, size, size].

Augmentation draws its random parameters once per clip (:func:`random_resized_box`) and applies
them to all T frames at once, so motion between frames is preserved. The horizontal flip is label-aware: a
flipped clip of class c is labelled ``mirror_permutation()[c]`` of the class table (18 <-> 19 in the
challenge). Colour jitter and normalisation act on whole batches in the training or inference step
(:class:`whatnext.data.clip_normalise.ClipNormaliser`), so the loaders stay uint8. Randomness comes from
torch's global generator (which the trainer seeds per clip), so a seeded run is reproducible.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from whatnext.data.class_table import load_class_table


class LabelAwareFlip:
    """Mirror every frame with probability ``p`` and map the label through ``mirror_perm`` (-1 stays -1)."""

    def __init__(self, mirror_perm: Sequence[int], p: float = 0.5):
        self.mirror_perm, self.p = list(mirror_perm), p

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        if torch.rand(()) >= self.p:
            return frames, label
        return frames.flip(-1), (label if label < 0 else self.mirror_perm[label])


def random_resized_box(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                       attempts: int = 10) -> tuple[int, int, int, int]:
    """(top, left, box height, box width) of a random crop covering an area fraction uniform in ``scale``
    with a log-uniform aspect ratio (width / height) in ``ratio``; a centre crop clamped to ``ratio`` if no
    attempt fits. The rule of ``v2.RandomResizedCrop``, drawn in a single ``torch.rand`` call (the per-number
    draws of torchvision cost about 0.1 ms a clip, a tenth of decoding a clip at 64 px).
    """
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for area_u, ratio_u, top_u, left_u in torch.rand(attempts, 4).tolist():
        area = height * width * (scale[0] + (scale[1] - scale[0]) * area_u)
        aspect = math.exp(log_lo + (log_hi - log_lo) * ratio_u)
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return min(int(top_u * (height - h + 1)), height - h), min(int(left_u * (width - w + 1)), width - w), h, w
    w, h = width, height  # fallback: the largest centre crop within the ratio range
    if width / height < ratio[0]:
        h = round(width / ratio[0])
    elif width / height > ratio[1]:
        w = round(height * ratio[1])
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(frames: torch.Tensor, top: int, left: int, height: int, width: int, size: int) -> torch.Tensor:
    """Crop every frame to the box (top, left, height, width) and resize it to ``size`` x ``size``: one
    antialiased bilinear ``F.interpolate`` of the whole clip, as ``v2.functional.resized_crop`` with
    ``antialias=True``. uint8 [T, C, H, W] (any strides) -> uint8 [T, C, size, size] (channels-last strides).

    Channels-last memory (the reader's own) puts uint8 RGB on torch's vectorised resampling kernel (about
    3x faster than the planar one). The result can differ from torchvision's by one grey level (rounding).
    """
    crop = frames[..., top : top + height, left : left + width]
    if crop.stride(-3) != 1:  # planar input: copy once to channels-last (the reader's frames already are)
        crop = crop.contiguous(memory_format=torch.channels_last)
    if (height, width) == (size, size):
        return crop
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class TrainTransform:
    """Clip-coherent training augmentation; called as ``transform(frames, label) -> (frames, label)``.

    frames uint8 [T, C, H, W] -> uint8 [T, C, size, size]: random resized crop (area fraction ``scale``,
    box from :func:`random_resized_box`, applied by :func:`resized_crop`) and label-aware
    horizontal flip with probability ``flip_p``. Colour jitter comes later, per batch
    (``ClipNormaliser(..)(clips, jitter)``).
    """

    label_aware = True

    def __init__(self, size: int, *, scale: tuple[float, float] = (0.35, 1.0), flip_p: float = 0.5,
                 mirror_perm: Sequence[int] | None = None):
        self.size, self.scale, self.ratio = size, list(scale), [3 / 4, 4 / 3]
        self.flip = LabelAwareFlip(load_class_table().mirror_permutation() if mirror_perm is None else mirror_perm, flip_p)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        top, left, height, width = random_resized_box(*frames.shape[-2:], self.scale, self.ratio)
        return self.flip(resized_crop(frames, top, left, height, width, self.size), label)

