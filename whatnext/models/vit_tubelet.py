"""Tubelet (VideoMAE) ViT: t x p x p tubelet embedding, one spatio-temporal sequence per clip.

Clip [B, T, C, H, W] -> tokens [B, T', N, D] with T' = T / t and N = (H/p)*(W/p); every token
attends to every other token of its clip (timm Blocks). Pretraining runs it on the visible tokens
only (tube masking), via :meth:`MaskableViT.encode_sequences`.
"""

from __future__ import annotations

from whatnext.models.vit_base import MaskableViT, register_vit_sizes


class TubeletViT(MaskableViT):
    """Spatio-temporal ViT over tubelets; clip [B, T, C, H, W] -> tokens [B, T/t, (H/p)*(W/p), D]."""

    def __init__(self, **vit_kwargs):
        super().__init__(joint_time=True, **vit_kwargs)


TUBELET_SIZES = {  # tubelet t x p x p, dim, depth, heads, SSL decoder (dim, depth, heads)
    "videomae_vit_tiny": dict(tubelet_size=2, patch_size=8, embed_dim=96, depth=4, num_heads=3, decoder=(32, 1, 1)),
    "videomae_vit_s16": dict(tubelet_size=2, patch_size=16, embed_dim=384, depth=12, num_heads=6, decoder=(192, 4, 3)),
    "videomae_vit_b16": dict(tubelet_size=2, patch_size=16, embed_dim=768, depth=12, num_heads=12, decoder=(384, 4, 6)),
}

register_vit_sizes(TubeletViT, TUBELET_SIZES, family="videomae", masking="tube", mask_ratio=0.9)
