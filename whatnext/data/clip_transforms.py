"""Clip-coherent transforms: uint8 frames [T, C, H, W] -> normalised float32 [T, C, size, size].

Augmentation draws its random parameters once per clip and applies them to all T frames
(torchvision.transforms.v2 on a ``tv_tensors.Video``), so motion between frames is preserved. The
horizontal flip is label-aware: a flipped clip of class c is labelled ``mirror_permutation()[c]`` of the
class table (18 <-> 19 in the challenge). Normalisation uses the training split's statistics
(``norm_stats.json``), never ImageNet constants. Randomness comes from torch's global generator (which
DataLoader seeds per worker), so a seeded run is reproducible.
"""

from __future__ import annotations

from typing import Sequence

import torch
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


class TrainTransform:
    """Clip-coherent training augmentation; called as ``transform(frames, label) -> (frames, label)``.

    frames uint8 [T, C, H, W] -> float32 [T, C, size, size]: random resized crop (area fraction
    ``scale``), colour jitter of strength ``jitter`` (brightness, contrast, saturation; 0 disables),
    label-aware horizontal flip with probability ``flip_p``, normalisation.
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
        steps = [v2.RandomResizedCrop(size, scale=scale, antialias=True)]
        if jitter > 0:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        self.spatial = v2.Compose(steps)
        self.flip = LabelAwareFlip(load_class_table().mirror_permutation() if mirror_perm is None else mirror_perm, flip_p)
        self.normalise = normalise(mean, std)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        video = self.spatial(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        video, label = self.flip(video, label)
        return self.normalise(video), label


class EvalTransform:
    """Deterministic view: resize to ``round(size / crop_fraction)``, centre-crop ``size``, normalise.

    frames uint8 [T, C, H, W] -> float32 [T, C, size, size]; called as ``transform(frames)``.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], crop_fraction: float = 1.0):
        self.resize_crop = v2.Compose([v2.Resize(round(size / crop_fraction), antialias=True), v2.CenterCrop(size)])
        self.normalise = normalise(mean, std)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.resize_crop(tv_tensors.Video(frames)).as_subclass(torch.Tensor))
