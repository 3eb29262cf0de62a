"""Training-time views of a clip for finetuning, built on the data layer's clip-coherent transforms.

One view: :class:`whatnext.data.clip_transforms.TrainTransform` (random resized crop, colour
jitter, label-aware flip). Two views (for the consistency loss): two independent crops and
jitters of the same clip that share one label-aware flip, so both views carry the same label
and their predictions are directly comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from whatnext.data.clip_transforms import LabelAwareFlip, TrainTransform


@dataclass(frozen=True)
class Augmentation:
    """Strength of the clip-coherent augmentation: crop area fraction lower bound, jitter, flip probability."""

    crop_min: float = 0.35
    jitter: float = 0.3
    flip_p: float = 0.5


STANDARD = Augmentation()
STRONG = Augmentation(crop_min=0.15, jitter=0.5, flip_p=0.5)


class TwoViews:
    """(frames uint8 [T, C, H, W], label) -> (views float [2, T, C, size, size], label), label-aware."""

    label_aware = True

    def __init__(self, unflipped: TrainTransform, flip: LabelAwareFlip):
        self.unflipped, self.flip = unflipped, flip

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        views = torch.stack([self.unflipped(frames, label)[0], self.unflipped(frames, label)[0]])
        return self.flip(views, label)


def train_transform(size: int, mean: Sequence[float], std: Sequence[float], augmentation: Augmentation,
                    two_views: bool = False):
    """The label-aware training transform: one view [T, C, size, size] or, with ``two_views``, [2, T, C, size, size]."""
    scale = (augmentation.crop_min, 1.0)
    if not two_views:
        return TrainTransform(size, mean, std, scale=scale, jitter=augmentation.jitter, flip_p=augmentation.flip_p)
    unflipped = TrainTransform(size, mean, std, scale=scale, jitter=augmentation.jitter, flip_p=0.0)
    return TwoViews(unflipped, LabelAwareFlip(unflipped.flip.mirror_perm, augmentation.flip_p))
