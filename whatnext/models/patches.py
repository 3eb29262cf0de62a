"""Cutting clips into patch vectors and back, in the token order every ViT encoder here uses.

Clip [B, T, C, H, W] -> patches [B, T', N, P]: T' = T/t time steps (tubelet t; 1 per frame),
N = (H/p)*(W/p) patches per step in row-major order, P = t*p*p*C pixel values ordered (t, p, p, C).
"""

from __future__ import annotations

import torch


def patchify(x: torch.Tensor, patch_size: int, tubelet_size: int = 1) -> torch.Tensor:
    """[B, T, C, H, W] -> [B, T/t, (H/p)*(W/p), t*p*p*C]."""
    b, t, c, h, w = x.shape
    p, u = patch_size, tubelet_size
    if t % u or h % p or w % p:
        raise ValueError(f"clip {tuple(x.shape)} does not split into {u} x {p} x {p} patches")
    x = x.reshape(b, t // u, u, c, h // p, p, w // p, p)
    return x.permute(0, 1, 4, 6, 2, 5, 7, 3).reshape(b, t // u, (h // p) * (w // p), u * p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, tubelet_size: int, channels: int, height: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: [B, T', N, P] -> [B, T'*t, C, H, W] (W follows from N and ``height``)."""
    b, steps, n, _ = patches.shape
    p, u, c = patch_size, tubelet_size, channels
    rows = height // p
    cols = n // rows
    x = patches.reshape(b, steps, rows, cols, u, p, p, c)
    return x.permute(0, 1, 4, 7, 2, 5, 3, 6).reshape(b, steps * u, c, rows * p, cols * p)
