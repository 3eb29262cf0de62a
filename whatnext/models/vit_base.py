"""A ViT trunk (timm ``Block`` stack) that can run on a subset of its tokens, for masked pretraining.

Token layout shared by every encoder of this package: a clip [B, T, C, H, W] becomes a grid of
tokens [B, T', N, D] (T' = T/t time steps for tubelets of t frames, N = (H/p)*(W/p) patches per
step, D features). A ViT trunk attends within *sequences* of ``steps_per_sequence`` consecutive
steps: 1 for a per-frame ViT (MAE-2D: S = B*T sequences of L = N tokens), T' for a
spatio-temporal ViT (VideoMAE: S = B sequences of L = T'*N tokens). :meth:`to_sequences` /
:meth:`from_sequences` convert between the two views; masks [B, T', N] follow the same conversion.

The patch embedding is a linear map of each patch's pixels (:func:`patchify` order), the same
function as a strided t x p x p convolution, applied after selecting the kept tokens: a masked
encoder never touches the pixels of hidden patches and its cost scales with the visible count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm

from whatnext.models.clip_residual import minus_clip_mean
from whatnext.models.patches import patchify
from whatnext.models.registry import ENCODERS


def gather_tokens(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """values [S, L, F] at ids [S, L'] -> [S, L', F]."""
    return torch.gather(values, 1, ids.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


class MaskableViT(nn.Module):
    """Patch embedding + learned position embedding -> timm Blocks -> LayerNorm.

    Attributes: ``grid`` (T', N), ``steps_per_sequence``, ``patch_size`` (px), ``tubelet_size``
    (frames per token), ``patch_dim`` (P), ``embed_dim`` (D), ``num_steps`` (T').

    ``clip_residual``: the encoder sees each frame minus the clip's mean frame (a motion residual), for
    masked pretraining too (its targets are those patches). The CPU default config turns it on for the tiny
    ViTs: from scratch on a thousand clips with static textured backgrounds, a ViT's linear patch embedding
    does not find the small moving objects and the classifier stays at the majority class, as the seed saw
    for pure ViTs trained from scratch; on the residual it learns (see the README). Off by default.
    """

    def __init__(self, *, img_size: int, num_frames: int, patch_size: int, tubelet_size: int, joint_time: bool,
                 embed_dim: int, depth: int, num_heads: int, in_chans: int = 3, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.0, clip_residual: bool = False):
        super().__init__()
        if num_frames % tubelet_size or img_size % patch_size:
            raise ValueError(f"{num_frames} frames of {img_size}px do not split into "
                             f"{tubelet_size} x {patch_size} x {patch_size} patches")
        self.input_shape = (num_frames, in_chans, img_size, img_size)
        self.patch_size, self.tubelet_size, self.clip_residual = patch_size, tubelet_size, clip_residual
        self.grid = (num_frames // tubelet_size, (img_size // patch_size) ** 2)
        self.steps_per_sequence = self.grid[0] if joint_time else 1
        self.patch_dim = tubelet_size * patch_size**2 * in_chans
        self.embed_dim = embed_dim
        self.patch_embed = nn.Linear(self.patch_dim, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.steps_per_sequence * self.grid[1], embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rate) for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_weights_vit_timm)

    @property
    def num_steps(self) -> int:
        """T': time steps of the token grid."""
        return self.grid[0]

    def to_sequences(self, grid_values: torch.Tensor) -> torch.Tensor:
        """[B, T', N, ...] -> [S, L, ...] (S = B*T'/steps_per_sequence, L = steps_per_sequence*N)."""
        return grid_values.reshape(-1, self.steps_per_sequence * self.grid[1], *grid_values.shape[3:])

    def from_sequences(self, seq_values: torch.Tensor) -> torch.Tensor:
        """[S, L, ...] -> [B, T', N, ...] (inverse of :meth:`to_sequences`)."""
        return seq_values.reshape(-1, *self.grid, *seq_values.shape[2:])

    def patch_sequences(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> patch pixel vectors per sequence [S, L, P] (:func:`patchify` order)."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{type(self).__name__} built for clips [B, {', '.join(map(str, self.input_shape))}], "
                             f"got {list(x.shape)}")
        if self.clip_residual:
            x = minus_clip_mean(x)
        return self.to_sequences(patchify(x, self.patch_size, self.tubelet_size))

    def embed(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> embedded tokens with positions [S, L_vis, D] for ``ids_keep`` [S, L_vis] (all if None)."""
        return self.embed_patches(self.patch_sequences(x), ids_keep)

    def embed_patches(self, pixels: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Patch vectors [S, L, P] -> embedded tokens with positions [S, L_vis, D] for ``ids_keep`` (all if None)."""
        positions = self.pos_embed.expand(pixels.shape[0], -1, -1)
        if ids_keep is not None:
            pixels, positions = gather_tokens(pixels, ids_keep), gather_tokens(positions, ids_keep)
        return self.patch_embed(pixels) + positions

    def encode_sequences(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None,
                         attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the tokens ``ids_keep`` [S, L_vis] of each sequence (all if None) -> [S, L_vis, D].

        Only the kept tokens are embedded and enter the Blocks, so cost scales with L_vis.
        ``attn_mask`` (additive, broadcastable to [S, heads, L_vis, L_vis]) is passed to every Block.
        """
        return self.encode_patches(self.patch_sequences(x), ids_keep, attn_mask)

    def encode_patches(self, pixels: torch.Tensor, ids_keep: torch.Tensor | None = None,
                       attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`encode_sequences` from patch vectors [S, L, P] (:meth:`patch_sequences`) -> [S, L_vis, D]."""
        tokens = self.embed_patches(pixels, ids_keep)
        for block in self.blocks:
            tokens = block(tokens, attn_mask=attn_mask)
        return self.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> tokens [B, T', N, D]."""
        return self.from_sequences(self.encode_sequences(x))


@dataclass(frozen=True)
class SSLDefaults:
    """Masked-pretraining defaults of a ViT size: masking strategy and ratio, light decoder shape, and the
    share of masked tokens the decoder reconstructs (1: all; < 1: VideoMAE V2 decoder masking)."""

    masking: str
    mask_ratio: float
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int
    decoder_keep: float = 1.0


def register_vit_sizes(cls: type[MaskableViT], sizes: dict[str, dict], *, family: str, masking: str,
                       mask_ratio: float) -> None:
    """Register one encoder builder per named size; ``size["decoder"]`` = (dim, depth, heads[, keep]) of its SSL decoder."""
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
