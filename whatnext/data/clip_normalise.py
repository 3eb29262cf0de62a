"""uint8 clip batches -> the models' normalised float32 input, with optional clip-coherent colour jitter.

The loaders deliver uint8 clips (4x fewer bytes than float32 through the worker pipes and the
host-to-device copy); the per-pixel float work (colour jitter and normalisation) runs here, on the batch,
on whatever device the batch is on (the GPU on the cluster). Normalisation uses the training split's statistics
(``norm_stats.json``), never ImageNet constants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from whatnext.data.norm_stats import load_norm_stats

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


class ClipNormaliser:
    """Clips [..., T, C, H, W] of 0..255 values (uint8, or float as resized on a GPU) -> float32
    ``(x / 255 - mean) / std`` per RGB channel, same shape.

    ``jitter`` > 0 also adjusts brightness, contrast and saturation as ``v2.ColorJitter`` does, with one
    draw of factors b, c, s uniform in [1 - jitter, 1 + jitter] per clip (each index of the leading dims
    ``...``) shared by its T frames. The draw uses torch's global generator on the CPU, so a seeded run
    gives the same factors on every device. The three adjustments are linear in RGB and compose, per clip
    and channel, into ``x' = b c s x + b c (1 - s) grey(x) + b (1 - c) mean_luma`` (grey the ITU-R 601 luma of
    each pixel, mean_luma the clip's mean grey; torchvision: each frame's), folded with the normalisation
    and applied in place on one float buffer, then clamped to the image of [0, 1] (torchvision clamps
    after each step; the two agree when no step clips). The output is contiguous float32.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor([float(m) for m in mean])
        self.std = torch.tensor([float(s) for s in std])
        if self.mean.shape != (3,) or self.std.shape != (3,) or (self.std <= 0).any():
            raise ValueError(f"need 3 means and 3 positive stds, got mean={list(mean)} std={list(std)}")

    @classmethod
    def from_stats_file(cls, path: str | Path) -> "ClipNormaliser":
        """The normaliser of a ``norm_stats.json`` (``DataFormatError`` naming the file if malformed)."""
        return cls(*load_norm_stats(path))

    def __call__(self, clips: torch.Tensor, jitter: float = 0.0) -> torch.Tensor:
        if not (clips.dtype == torch.uint8 or clips.is_floating_point()) or clips.ndim < 4 or clips.shape[-3] != 3:
            raise ValueError(f"expected uint8 or float clips [..., T, C=3, H, W], got {clips.dtype} {list(clips.shape)}")
        t, c, h, w = clips.shape[-4:]
        # one fresh float32 buffer (never the caller's float input), worked on in place: on the CPU each
        # further batch-sized buffer costs more in page faults than its arithmetic (bench/data_loading.py)
        x = clips.reshape(-1, t, c, h * w).to(torch.float32, memory_format=torch.contiguous_format, copy=True)  # [N, T, 3, HW]
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        if jitter == 0:
            return x.mul_((1 / (255 * std))[:, None]).sub_((mean / std)[:, None]).view(clips.shape)
        n = x.shape[0]
        b, contrast, s = (1 + jitter * (2 * torch.rand(n, 3) - 1)).to(x.device).unbind(1)  # [N] each
        grey = torch.matmul(torch.tensor(LUMA, device=x.device), x)  # [N, T, HW], 0..255
        mean_luma = grey.mean(dim=(1, 2)) / 255  # [N], in [0, 1]
        # x' = A x + B grey + C per clip and channel: A = b c s, B = b c (1 - s), C = b (1 - c) mean_luma
        # (on [0, 1] RGB), each folded with the normalisation (input 0..255, row i over std_i)
        gain = (b * contrast)[:, None] / (255 * std)  # [N, 3]
        offset = ((b * (1 - contrast) * mean_luma)[:, None] - mean) / std
        x.mul_((gain * s[:, None])[:, None, :, None]).add_(offset[:, None, :, None])
        x.addcmul_(grey[:, :, None], (gain * (1 - s)[:, None])[:, None, :, None])
        for channel, (lo, hi) in enumerate(zip((-self.mean / self.std).tolist(), ((1 - self.mean) / self.std).tolist())):
            x[:, :, channel].clamp_(lo, hi)  # scalar bounds: several times faster than broadcast tensor bounds
        return x.view(clips.shape)
