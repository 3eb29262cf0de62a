"""Training-time views of a clip for finetuning, built on the data layer's clip-coherent transforms.

One view: :class:`whatnext.data.clip_transforms.TrainTransform` (random resized crop, label-aware
flip; uint8). Two views (for the consistency loss): two independent crops of the same clip that share
one label-aware flip, so both views carry the same label and their predictions are directly
comparable. The colour jitter of ``Augmentation.jitter`` is drawn per view and per batch in the
training step (:class:`whatnext.data.clip_normalise.ClipNormaliser`).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """(frames uint8 [T, C, H, W], label) -> (views uint8 [2, T, C, size, size], label), label-aware."""

    label_aware = True

    def __init__(self, unflipped: TrainTransform, flip: LabelAwareFlip):
        self.unflipped, self.flip = unflipped, flip

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        views = torch.stack([self.unflipped(frames, label)[0], self.unflipped(frames, label)[0]])
        return self.flip(views, label)


def train_transform(size: int, augmentation: Augmentation, two_views: bool = False):
    """The label-aware training transform: one uint8 view [T, C, size, size] or, with ``two_views``, [2, T, C, size, size]."""
    scale = (augmentation.crop_min, 1.0)
    if not two_views:
        return TrainTransform(size, scale=scale, flip_p=augmentation.flip_p)
    unflipped = TrainTransform(size, scale=scale, flip_p=0.0)
    return TwoViews(unflipped, LabelAwareFlip(unflipped.flip.mirror_perm, augmentation.flip_p))
