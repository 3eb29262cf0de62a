"""MAE-2D ViT: a per-frame ViT (timm Blocks) with zero-initialised temporal attention in its last K blocks.

Pretraining (MAE, random per-frame masking) runs the per-frame ViT alone on the visible patches
of each frame (:meth:`MaskableViT.encode_sequences`). Classification (:meth:`MAE2DViT.forward`)
adds, after each of the last ``temporal_blocks`` Blocks, a residual attention across the T frames
at every spatial position whose output projection starts at zero: an exact identity at
initialisation, so pretrained spatial weights are undisturbed at the first finetuning step. The
temporal modules are part of the encoder's state dict from the start (still at their initial
values after pretraining, which never runs them), so an SSL encoder checkpoint loads strictly
into the classifier.
"""

from __future__ import annotations

import torch
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Attention, init_weights_vit_timm

from whatnext.models.vit_base import MaskableViT, register_vit_sizes


class TemporalAttention(nn.Module):
    """x + Attn(LN(x) + e_t) across time at each spatial token; [B, T, N, D] -> [B, T, N, D].

    ``e_t`` is a learned per-frame embedding (so order is visible to the attention); the
    attention's output projection is zero-initialised, hence an identity at initialisation.
    """

    def __init__(self, dim: int, num_heads: int, num_frames: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.time_embed = nn.Parameter(torch.zeros(num_frames, dim))
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        trunc_normal_(self.time_embed, std=0.02)
        self.attn.apply(init_weights_vit_timm)
        nn.init.zeros_(self.attn.proj.weight)
        nn.init.zeros_(self.attn.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        per_position = x.transpose(1, 2).reshape(b * n, t, d)
        update = self.attn(self.norm(per_position) + self.time_embed)
        return x + update.reshape(b, n, t, d).transpose(1, 2)


class MAE2DViT(MaskableViT):
    """Per-frame ViT; clip [B, T, C, H, W] -> tokens [B, T, N, D], N = (H/p)*(W/p)."""

    def __init__(self, *, img_size: int, num_frames: int, patch_size: int, embed_dim: int, depth: int,
                 num_heads: int, temporal_blocks: int, **vit_kwargs):
        if not 0 <= temporal_blocks <= depth:
            raise ValueError(f"temporal_blocks must lie in [0, depth={depth}], got {temporal_blocks}")
        super().__init__(img_size=img_size, num_frames=num_frames, patch_size=patch_size, tubelet_size=1,
                         joint_time=False, embed_dim=embed_dim, depth=depth, num_heads=num_heads, **vit_kwargs)
        self.temporal = nn.ModuleDict(
            {str(i): TemporalAttention(embed_dim, num_heads, num_frames) for i in range(depth - temporal_blocks, depth)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> tokens [B, T, N, D], with temporal attention after the last K Blocks."""
        tokens = self.embed(x)  # [B*T, N, D]
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if str(i) in self.temporal:
                tokens = self.temporal[str(i)](self.from_sequences(tokens)).flatten(0, 1)
        return self.from_sequences(self.norm(tokens))


MAE2D_SIZES = {  # patch, dim, depth, heads, temporal blocks K, SSL decoder (dim, depth, heads)
    "mae2d_vit_tiny": dict(patch_size=8, embed_dim=96, depth=4, num_heads=3, temporal_blocks=2, decoder=(32, 1, 1)),
    "mae2d_vit_b16": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, temporal_blocks=6, decoder=(384, 4, 6)),
}

register_vit_sizes(MAE2DViT, MAE2D_SIZES, family="mae2d", masking="random_frame", mask_ratio=0.75)
