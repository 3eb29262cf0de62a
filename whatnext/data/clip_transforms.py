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


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


class ColourJitterNormalise:
    """Clip-coherent brightness / contrast / saturation jitter fused with normalisation, on uint8 input.

    The three adjustments of ``v2.ColorJitter`` are linear in RGB (brightness scales, saturation blends with
    the luma, contrast blends with the clip's mean luma) and commute, so one draw of factors b, c, s in
    [1 - strength, 1 + strength] gives a single 3x3 colour matrix and offset for the whole clip:
    ``x' = b * (c * S x + (1 - c) * mean_luma)``, with ``S = s I + (1 - s) 1 luma^T``. It is folded into
    ``(x' - mean) / std`` and clamped to the image of [0, 1]: one pass instead of seven. uint8 [T, C, H, W]
    -> float32 [T, C, H, W].
    """

    def __init__(self, strength: float, mean: Sequence[float], std: Sequence[float]):
        self.strength = strength
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        self.luma = torch.tensor(LUMA)
        self.lo, self.hi = (-self.mean / self.std)[:, None], ((1 - self.mean) / self.std)[:, None]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        b, c, s = (1 + self.strength * (2 * torch.rand(3) - 1)).tolist()
        t, _, h, w = frames.shape
        x = frames.transpose(0, 1).reshape(3, -1).float().div_(255.0)  # [C, T*H*W]
        saturate = s * torch.eye(3) + (1 - s) * self.luma[None, :].expand(3, 3)
        mean_luma = (self.luma @ x.mean(dim=1)).item()
        matrix = (b * c * saturate) / self.std[:, None]
        offset = (b * (1 - c) * mean_luma - self.mean) / self.std
        out = torch.addmm(offset[:, None], matrix, x).clamp_(self.lo, self.hi)
        return out.reshape(3, t, h, w).transpose(0, 1)


class TrainTransform:
    """Clip-coherent training augmentation; called as ``transform(frames, label) -> (frames, label)``.

    frames uint8 [T, C, H, W] -> float32 [T, C, size, size]: random resized crop (area fraction
    ``scale``, ``v2.RandomResizedCrop`` on the video), label-aware horizontal flip with probability
    ``flip_p``, colour jitter of strength ``jitter`` (brightness, contrast, saturation) fused with the
    normalisation (``ColourJitterNormalise``; 0 disables the jitter).
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
        self.crop = v2.RandomResizedCrop(size, scale=scale, antialias=True)
        self.flip = LabelAwareFlip(load_class_table().mirror_permutation() if mirror_perm is None else mirror_perm, flip_p)
        self.colour_normalise = ColourJitterNormalise(jitter, mean, std)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        video = self.crop(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        video, label = self.flip(video, label)
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
