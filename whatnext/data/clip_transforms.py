"""Clip-coherent transforms: uint8 frames [T, C, H, W] -> normalised float32 [T, C, size, size].

Augmentation draws its random parameters once per clip (``v2.RandomResizedCrop.get_params``) and applies
them to all T frames at once, so motion between frames is preserved. The horizontal flip is label-aware: a
flipped clip of class c is labelled ``mirror_permutation()[c]`` of the class table (18 <-> 19 in the
challenge). Normalisation uses the training split's statistics
(``norm_stats.json``), never ImageNet constants. Randomness comes from torch's global generator (which
DataLoader seeds per worker), so a seeded run is reproducible.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from whatnext.data.class_table import load_class_table


def normalise(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 [..., C, H, W] -> float32 in [0, 1] -> (x - mean) / std per channel."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class LabelAwareFlip:
    """Mirror every frame with probability ``p`` and map the label through ``mirror_perm`` (-1 stays -1)."""

    def __init__(self, mirror_perm: Sequence[int], p: float = 0.5):
        self.mirror_perm, self.p = list(mirror_perm), p

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        if torch.rand(()) >= self.p:
            return frames, label
        return frames.flip(-1), (label if label < 0 else self.mirror_perm[label])


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


class ColourJitterNormalise:
    """Clip-coherent brightness / contrast / saturation jitter fused with normalisation, on uint8 input.

    The three adjustments of ``v2.ColorJitter`` are linear in RGB (brightness scales, saturation blends with
    the luma, contrast blends with the clip's mean luma) and commute, so one draw of factors b, c, s in
    [1 - strength, 1 + strength] gives a single 3x3 colour matrix and offset for the whole clip:
    ``x' = b * (c * S x + (1 - c) * mean_luma)``, with ``S = s I + (1 - s) 1 luma^T``. It is folded, with the
    1/255 scaling, into ``(x' - mean) / std`` (one batched matrix product) and clamped to the image of
    [0, 1]: three passes instead of seven. uint8 [T, C, H, W] -> float32 [T, C, H, W] (contiguous).
    """

    def __init__(self, strength: float, mean: Sequence[float], std: Sequence[float]):
        self.strength = strength
        self.mean, self.std = [float(m) for m in mean], [float(d) for d in std]
        self.bounds = [(-m / d, (1 - m) / d) for m, d in zip(self.mean, self.std)]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        b, c, s = (1 + self.strength * (2 * u - 1) for u in torch.rand(3).tolist())
        t, _, h, w = frames.shape
        x = torch.empty(t, 3, h * w).copy_(frames.flatten(2))  # 0..255, planar whatever the input's strides
        mean_luma = sum(l * m for l, m in zip(LUMA, x.mean(dim=(0, 2)).tolist())) / 255.0
        shift = b * (1 - c) * mean_luma
        # the per-clip matrix (on [0, 1] RGB) and offset as Python floats: tiny tensor ops would cost more
        rows = [[b * c * (s * (i == k) + (1 - s) * luma) for k, luma in enumerate(LUMA)] for i in range(3)]
        matrix = torch.tensor([[v / (255.0 * d) for v in row] for row, d in zip(rows, self.std)])
        offset = torch.tensor([[(shift - m) / d] for m, d in zip(self.mean, self.std)])
        out = torch.baddbmm(offset, matrix.expand(t, 3, 3), x).view(t, 3, h, w)
        for channel, (row, (lo, hi)) in enumerate(zip(rows, self.bounds)):
            # clamp only a side of [0, 1] that the row can leave over the RGB cube (none without jitter);
            # scalar bounds per channel are much faster than broadcast tensor bounds
            low, high = shift + sum(v for v in row if v < 0), shift + sum(v for v in row if v > 0)
            if low < 0 or high > 1:
                out[:, channel].clamp_(lo if low < 0 else None, hi if high > 1 else None)
        return out


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

    frames uint8 [T, C, H, W] -> float32 [T, C, size, size]: random resized crop (area fraction
    ``scale``, parameters from ``v2.RandomResizedCrop.get_params``, applied by ``resized_crop``),
    label-aware horizontal flip with probability ``flip_p``, colour jitter of strength ``jitter``
    (brightness, contrast, saturation) fused with the normalisation (``ColourJitterNormalise``; 0 disables
    the jitter).
    """

    label_aware = True

    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        scale: tuple[float, float] = (0.35, 1.0),
        jitter: float = 0.3,
        flip_p: float = 0.5,
        mirror_perm: Sequence[int] | None = None,
    ):
        self.size, self.scale, self.ratio = size, list(scale), [3 / 4, 4 / 3]
        self.flip = LabelAwareFlip(load_class_table().mirror_permutation() if mirror_perm is None else mirror_perm, flip_p)
        self.colour_normalise = ColourJitterNormalise(jitter, mean, std)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        top, left, height, width = v2.RandomResizedCrop.get_params(frames, self.scale, self.ratio)
        video, label = self.flip(resized_crop(frames, top, left, height, width, self.size), label)
        return self.colour_normalise(video), label


class EvalTransform:
    """Deterministic view: resize to ``round(size / crop_fraction)``, centre-crop ``size``, normalise.

    frames uint8 [T, C, H, W] -> float32 [T, C, size, size]; called as ``transform(frames)``.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], crop_fraction: float = 1.0):
        self.resize_crop = v2.Compose([v2.Resize(round(size / crop_fraction), antialias=True), v2.CenterCrop(size)])
        self.normalise = normalise(mean, std)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.resize_crop(tv_tensors.Video(frames)).as_subclass(torch.Tensor))
