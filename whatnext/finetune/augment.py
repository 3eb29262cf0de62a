"""Finetuning's augmentation strengths and the training step's augmenter built from them.

The loaders decode and stack clips; :class:`whatnext.data.clip_transforms.ClipAugmenter` augments each
batch in the training step: random resized crop, label-aware flip, colour jitter, normalisation. Two views
(for the consistency loss) are two independent crops and colour draws of the same clip that share one
label-aware flip, so both views carry the same label and their predictions are directly comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.clip_transforms import ClipAugmenter


@dataclass(frozen=True)
class Augmentation:
    """Strength of the clip-coherent augmentation: crop area fraction lower bound, jitter, flip probability."""

    crop_min: float = 0.35
    jitter: float = 0.3
    flip_p: float = 0.5


STANDARD = Augmentation()
STRONG = Augmentation(crop_min=0.15, jitter=0.5, flip_p=0.5)


def train_augmenter(size: int, augmentation: Augmentation, normaliser: ClipNormaliser, two_views: bool = False,
                    mirror_perm=None) -> ClipAugmenter:
    """The training step's augmenter: batches -> normalised [B, T, C, size, size] or, with ``two_views``, [B, 2, T, C, size, size].
    ``mirror_perm``: the labels of mirrored clips (default the class table's 18 <-> 19)."""
    return ClipAugmenter(size, normaliser, scale=(augmentation.crop_min, 1.0), flip_p=augmentation.flip_p,
                         jitter=augmentation.jitter, views=2 if two_views else 1, mirror_perm=mirror_perm)
