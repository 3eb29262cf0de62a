"""A ViT trunk (timm ``Block`` stack) that can run on a subset of its tokens, for masked pretraining.

Token layout shared by every encoder of this package: a clip [B, T, C, H, W] becomes a grid of
tokens [B, T', N, D] (T' time steps, N spatial patches per step, D features). A ViT trunk
attends within *sequences* of ``steps_per_sequence`` consecutive time steps: 1 for a per-frame
ViT (MAE-2D: S = B*T sequences of L = N tokens), T' for a spatio-temporal ViT (VideoMAE:
S = B sequences of L = T'*N tokens). :meth:`to_sequences` / :meth:`from_sequences` convert
between the two views, and masks [B, T', N] follow the same conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm

from whatnext.models.registry import ENCODERS


class MaskableViT(nn.Module):
    """Patch tokens + learned position embedding -> timm Blocks -> LayerNorm.

    Subclasses define ``patch_tokens(x [B, T, C, H, W]) -> [S, L, D]`` (without positions)
    and set ``grid = (T', N)``, ``steps_per_sequence``, ``patch_size`` (pixels) and
    ``tubelet_size`` (frames per token).
    """

    def __init__(self, *, tokens_per_sequence: int, embed_dim: int, depth: int, num_heads: int,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.embed_dim = embed_dim
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens_per_sequence, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rate) for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def _init_vit_weights(self) -> None:
        """timm's ViT initialisation (truncated normal 0.02 linears, unit LayerNorms)."""
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_weights_vit_timm)

    @property
    def num_steps(self) -> int:
        """T': time steps of the token grid."""
        return self.grid[0]

    def to_sequences(self, grid_values: torch.Tensor) -> torch.Tensor:
        """[B, T', N, ...] -> [S, L, ...] (S = B*T'/steps_per_sequence, L = steps_per_sequence*N)."""
        steps, n = self.grid
        return grid_values.reshape(-1, self.steps_per_sequence * n, *grid_values.shape[3:])

    def from_sequences(self, seq_values: torch.Tensor) -> torch.Tensor:
        """[S, L, ...] -> [B, T', N, ...] (inverse of :meth:`to_sequences`)."""
        steps, n = self.grid
        return seq_values.reshape(-1, steps, n, *seq_values.shape[2:])

    def encode_sequences(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None,
                         attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the tokens ``ids_keep`` [S, L_vis] of each sequence (all if None) -> [S, L_vis, D].

        Only the kept tokens enter the Blocks, so cost scales with L_vis. ``attn_mask``
        (additive, broadcastable to [S, heads, L_vis, L_vis]) is passed to every Block.
        """
        tokens = self.patch_tokens(x) + self.pos_embed
        if ids_keep is not None:
            tokens = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        for block in self.blocks:
            tokens = block(tokens, attn_mask=attn_mask)
        return self.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> tokens [B, T', N, D]."""
        return self.from_sequences(self.encode_sequences(x))


@dataclass(frozen=True)
class SSLDefaults:
    """Masked-pretraining defaults of a ViT size: masking strategy and ratio, light decoder shape."""

    masking: str
    mask_ratio: float
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int


def register_vit_sizes(cls: type[MaskableViT], sizes: dict[str, dict], *, family: str, masking: str,
                       mask_ratio: float) -> None:
    """Register one encoder builder per named size; ``size["decoder"]`` = (dim, depth, heads) of its SSL decoder."""
    for name, size in sizes.items():
        _register_vit(name, cls, size, SSLDefaults(masking, mask_ratio, *size["decoder"]), family)


def _register_vit(name: str, cls: type[MaskableViT], size: dict, ssl_defaults: SSLDefaults, family: str) -> None:
    @ENCODERS.register(name)
    def build(img_size: int, num_frames: int, **overrides) -> MaskableViT:
        kwargs = {k: v for k, v in size.items() if k != "decoder"} | overrides
        encoder = cls(img_size=img_size, num_frames=num_frames, **kwargs)
        encoder.family = family
        encoder.ssl_defaults = ssl_defaults
        return encoder

    build.__doc__ = f"{cls.__name__} {size}."
