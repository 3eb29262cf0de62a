"""Plain convolutional encoders trained from scratch: a per-frame 2D net and a clip-level 3D net.

Both are stacks of stages (3x3 conv stride 2 in space -> BN -> ReLU -> 3x3 conv -> BN -> ReLU),
one stage per entry of ``widths``, after which the last feature map becomes tokens: 2D maps
[B, T, C, H, W] -> [B, T, (H/2^S)*(W/2^S), D]; 3D convolves across time too (3x3x3 kernels, stride 1
in time, so T' = T) and maps to the same token layout. D = widths[-1], S = len(widths).

``clip_residual``: the net sees each frame minus the clip's mean frame, as the tiny ViTs can
(:class:`whatnext.models.vit_base.MaskableViT`). What is static over the four frames (background, clutter,
the scene's light) cancels and what moves stays. On the tuning presets at 32 px (one conv3d member, 20
epochs, val top-1, raw -> residual): cluttered 0.050 -> 0.277, handheld 0.198 -> 0.465, tabletop
0.752 -> 0.827; giving both (6 channels) was no better (0.163, 0.465, 0.847).
"""

from __future__ import annotations

import torch
from torch import nn

from whatnext.models.clip_residual import minus_clip_mean
from whatnext.models.registry import ENCODERS


class ConvEncoder(nn.Module):
    """Conv stages over frames (``spatial_dims=2``) or over the clip (``spatial_dims=3``) -> [B, T, N, D]."""

    def __init__(self, widths: tuple[int, ...], *, num_frames: int, spatial_dims: int, in_chans: int = 3,
                 clip_residual: bool = False):
        super().__init__()
        self.clip_residual = clip_residual
        conv, norm = {2: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv3d, nn.BatchNorm3d)}[spatial_dims]
        down = 2 if spatial_dims == 2 else (1, 2, 2)
        layers, cin = [], in_chans
        for width in widths:
            layers += [conv(cin, width, 3, stride=down, padding=1, bias=False), norm(width), nn.ReLU(inplace=True),
                       conv(width, width, 3, padding=1, bias=False), norm(width), nn.ReLU(inplace=True)]
            cin = width
        self.stages = nn.Sequential(*layers)
        self.spatial_dims = spatial_dims
        self.embed_dim = widths[-1]
        self.num_steps = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if self.clip_residual:
            x = minus_clip_mean(x)
        if self.spatial_dims == 2:
            maps = self.stages(x.flatten(0, 1))  # [B*T, D, h, w]
            return maps.flatten(2).transpose(1, 2).reshape(b, t, -1, self.embed_dim)
        maps = self.stages(x.transpose(1, 2))  # [B, D, T, h, w]
        return maps.flatten(3).permute(0, 2, 3, 1)


CONV_SIZES = {"tiny": (16, 32, 64), "base": (64, 128, 256, 512)}


def _register(name: str, widths: tuple[int, ...], spatial_dims: int) -> None:
    @ENCODERS.register(name)
    def build(img_size: int, num_frames: int, clip_residual: bool = False) -> ConvEncoder:
        if img_size % 2 ** len(widths):
            raise ValueError(f"encoder {name} needs img_size a multiple of {2 ** len(widths)}, got {img_size}")
        encoder = ConvEncoder(widths, num_frames=num_frames, spatial_dims=spatial_dims, clip_residual=clip_residual)
        encoder.family = f"conv{spatial_dims}d"
        return encoder

    build.__doc__ = f"{spatial_dims}D conv net, widths {widths}."


for _size, _widths in CONV_SIZES.items():
    for _dims in (2, 3):
        _register(f"conv{_dims}d_{_size}", _widths, _dims)
