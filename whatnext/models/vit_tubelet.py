"""Tubelet (VideoMAE) ViT: 3D patch embedding t x p x p, one spatio-temporal sequence per clip.

Clip [B, T, C, H, W] -> tokens [B, T', N, D] with T' = T / t and N = (H/p)*(W/p); every token
attends to every other token of its clip (timm Blocks). Pretraining runs it on the visible tokens
only (tube masking), via :meth:`MaskableViT.encode_sequences`.
"""

from __future__ import annotations

import torch
from torch import nn

from whatnext.models.vit_base import MaskableViT, register_vit_sizes


class TubeletEmbed(nn.Module):
    """Non-overlapping t x p x p tubelets -> D features: [B, T, C, H, W] -> [B, T'*N, D] (time-major)."""

    def __init__(self, *, tubelet_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        size = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=size, stride=size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.transpose(1, 2)).flatten(2).transpose(1, 2)


class TubeletViT(MaskableViT):
    """Spatio-temporal ViT over tubelets; clip [B, T, C, H, W] -> tokens [B, T/t, (H/p)*(W/p), D]."""

    def __init__(self, *, img_size: int, num_frames: int, patch_size: int, tubelet_size: int, embed_dim: int,
                 depth: int, num_heads: int, in_chans: int = 3, mlp_ratio: float = 4.0, drop_path_rate: float = 0.0):
        if num_frames % tubelet_size or img_size % patch_size:
            raise ValueError(f"num_frames {num_frames} / img_size {img_size} must be multiples of the "
                             f"tubelet {tubelet_size} x {patch_size} x {patch_size}")
        steps, patches = num_frames // tubelet_size, (img_size // patch_size) ** 2
        super().__init__(tokens_per_sequence=steps * patches, embed_dim=embed_dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate)
        self.patch_embed = TubeletEmbed(tubelet_size=tubelet_size, patch_size=patch_size, in_chans=in_chans,
                                        embed_dim=embed_dim)
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        self.grid = (steps, patches)
        self.steps_per_sequence = steps
        self.img_size, self.num_frames = img_size, num_frames
        self._init_vit_weights()

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] -> [B, T'*N, D] (one sequence per clip)."""
        if tuple(x.shape[1:2]) != (self.num_frames,) or tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f"TubeletViT built for {self.num_frames} frames of {self.img_size}px, got {tuple(x.shape)}")
        return self.patch_embed(x)


TUBELET_SIZES = {  # tubelet t x p x p, dim, depth, heads, SSL decoder (dim, depth, heads)
    "videomae_vit_tiny": dict(tubelet_size=2, patch_size=8, embed_dim=96, depth=4, num_heads=3, decoder=(48, 1, 3)),
    "videomae_vit_s16": dict(tubelet_size=2, patch_size=16, embed_dim=384, depth=12, num_heads=6, decoder=(192, 4, 3)),
    "videomae_vit_b16": dict(tubelet_size=2, patch_size=16, embed_dim=768, depth=12, num_heads=12, decoder=(384, 4, 6)),
}


register_vit_sizes(TubeletViT, TUBELET_SIZES, family="videomae", masking="tube", mask_ratio=0.9)
