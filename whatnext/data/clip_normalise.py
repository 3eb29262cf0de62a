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
    gives the same factors on every device. The three adjustments are linear in RGB and compose into one
    3x3 matrix and offset per clip, ``x' = b * (c * S x + (1 - c) * mean_luma)`` with
    ``S = s I + (1 - s) 1 luma^T`` and mean_luma the clip's mean grey (torchvision: each frame's), folded with the normalisation into one batched matrix product and
    clamped to the image of [0, 1] (torchvision clamps after each step; the two agree when no step clips).
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
            raise ValueError(f"expected uint8 or float clips [..., T, 3, H, W], got {clips.dtype} {list(clips.shape)}")
        t, c, h, w = clips.shape[-4:]
        x = clips.reshape(-1, t, c, h * w).float()  # [N, T, 3, HW], 0..255
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        if jitter == 0:
            return torch.addcmul((-mean / std)[:, None], x, (1 / (255 * std))[:, None]).view(clips.shape)
        n = x.shape[0]
        b, contrast, s = (1 + jitter * (2 * torch.rand(n, 3) - 1)).to(x.device).unbind(1)  # [N] each
        luma = torch.tensor(LUMA, device=x.device)
        mean_luma = x.mean(dim=(1, 3)) @ luma / 255  # [N], in [0, 1]
        saturation = s[:, None, None] * torch.eye(3, device=x.device) + (1 - s)[:, None, None] * luma  # [N, 3, 3]
        colour = (b * contrast)[:, None, None] * saturation  # on [0, 1] RGB
        matrix = colour / (255 * std[:, None])  # row i scaled by 1 / std_i; input 0..255
        offset = ((b * (1 - contrast) * mean_luma)[:, None] - mean) / std  # [N, 3]
        out = torch.baddbmm(offset[:, None, :, None].expand(n, t, 3, 1).reshape(n * t, 3, 1),
                            matrix.repeat_interleave(t, 0), x.view(n * t, 3, h * w))
        lo, hi = (-mean / std)[:, None], ((1 - mean) / std)[:, None]
        return out.view(n, t, 3, h * w).clamp_(lo, hi).view(clips.shape)
