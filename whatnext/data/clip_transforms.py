"""Clip-coherent training augmentation of whole batches, run in the training step on the batch's device.

The loaders only decode and stack clips (:func:`whatnext.data.clip_batches.collate_clips`); the step's
:class:`ClipAugmenter` crops, resizes, flips, colour-jitters and normalises them. Moving the geometry out
of the loaders leaves their CPU time to JPEG decoding (at 224 px the upsampling random resized crop cost
about half as much as decoding the clip; ``bench/data_loading.py``), and on the GPU the resize is nearly free.

Random parameters are drawn once per clip (:func:`random_resized_box`) and applied to all T frames at once,
so motion between frames is preserved. The horizontal flip is label-aware: a flipped clip of class c is
labelled ``mirror_permutation()[c]`` of the class table (18 <-> 19 in the challenge). Draws use torch's
global CPU generator, which the trainer seeds and keeps in its resume state, so a seeded run is reproducible
on any device.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_normalise import ClipNormaliser


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
    ``antialias=True``. uint8 [T, C, H, W] (any strides) -> [T, C, size, size] (channels-last strides),
    uint8 on the CPU, float32 in 0..255 elsewhere (torch resamples uint8 on the CPU only).

    On the CPU, channels-last memory (the reader's and the batches' own) puts uint8 RGB on torch's
    vectorised resampling kernel (about 3x faster than the planar one). The result can differ from
    torchvision's by one grey level (rounding).
    """
    crop = frames[..., top : top + height, left : left + width]
    if crop.device.type != "cpu":
        crop = crop.float()
    if crop.stride(-3) != 1:  # planar input: copy once to channels-last
        crop = crop.contiguous(memory_format=torch.channels_last)
    if (height, width) == (size, size):
        return crop
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class ClipAugmenter:
    """The training augmentation of a collated batch: random resized crop, label-aware flip, colour jitter
    and normalisation.

    ``augmenter(frames, labels, frame_sizes) -> (x, labels)``: frames uint8 [B, T, C, H, W] with clip b in
    the top-left ``frame_sizes[b] = (H_b, W_b)`` (:func:`whatnext.data.clip_batches.collate_clips`); x float32
    [B, T, C, size, size], or [B, V, T, C, size, size] for ``views`` = V > 1 (two views feed the consistency
    loss), normalised by ``normaliser`` after colour jitter of strength ``jitter`` drawn per clip and view;
    labels long [B] (-1: unlabelled) mapped through the mirror permutation for flipped clips. Per clip, one
    flip draw (probability ``flip_p``) is shared by its views, so all views carry the same label; each view
    has its own crop box (area fraction uniform in ``scale``, aspect ratio in 3/4..4/3).
    """

    def __init__(self, size: int, normaliser: ClipNormaliser, *, scale: Sequence[float] = (0.35, 1.0),
                 flip_p: float = 0.5, jitter: float = 0.0, views: int = 1, mirror_perm: Sequence[int] | None = None):
        self.size, self.normaliser = size, normaliser
        self.scale, self.ratio = list(scale), [3 / 4, 4 / 3]
        self.flip_p, self.jitter, self.views = flip_p, jitter, views
        self.mirror = torch.as_tensor(load_class_table().mirror_permutation() if mirror_perm is None else list(mirror_perm))

    def __call__(self, frames: torch.Tensor, labels: torch.Tensor,
                 frame_sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        flips = torch.rand(len(labels)) < self.flip_p
        views = [self._view(frames[b, ..., :height, :width], flip)
                 for b, ((height, width), flip) in enumerate(zip(frame_sizes, flips.tolist()))
                 for _ in range(self.views)]
        clips = torch.stack(views).unflatten(0, (len(labels), self.views))  # [B, V, T, C, size, size]
        x = self.normaliser(clips if self.views > 1 else clips[:, 0], self.jitter)
        flips = flips.to(labels.device)
        mirrored = self.mirror.to(labels.device)[labels.clamp(min=0)]
        return x, torch.where(flips & (labels >= 0), mirrored, labels)

    def _view(self, clip: torch.Tensor, flip: bool) -> torch.Tensor:
        top, left, height, width = random_resized_box(*clip.shape[-2:], self.scale, self.ratio)
        view = resized_crop(clip, top, left, height, width, self.size)
        return view.flip(-1) if flip else view
