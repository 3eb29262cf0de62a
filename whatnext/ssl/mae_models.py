"""Masked-autoencoder pretraining models: MAE-2D (per-frame ViT) and VideoMAE (tubelet ViT).

One wrapper serves both: the masking strategy hides patches, the encoder runs on the visible
tokens only, a light decoder (separate module, so a cascade generation can reset it while
reloading the encoder) fills mask tokens in at their positions and predicts pixels, and the loss
is the MSE to per-patch-normalised pixels on masked patches only.

Shapes: clip x [B, T, C, H, W]; tubelet t (1 for MAE-2D), patch p; token grid [B, T', N] with
T' = T/t, N = (H/p)*(W/p); patch vector P = t*p*p*C; encoder sequences [S, L] (see
:mod:`whatnext.models.vit_base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm

from whatnext.models import build_encoder
from whatnext.models.patches import patchify
from whatnext.models.vit_base import MaskableViT
from whatnext.ssl.masking import Masking, build_masking, visible_indices


def normalise_patches(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch standardisation over the last (pixel) dimension: [..., P] -> [..., P]."""
    var, mean = torch.var_mean(target, dim=-1, keepdim=True)
    return (target - mean) * torch.rsqrt(var + eps)


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked patches of the per-patch MSE. pred, target [..., P]; mask bool [...] (True = masked).

    Visible patches are not selected, so they have no influence on the value or the gradient.
    """
    return ((pred - target) ** 2).mean(dim=-1)[mask].mean()


class MAEDecoder(nn.Module):
    """Light decoder: visible latents [S, L_vis, D_enc] + their indices -> pixel predictions [S, L, P].

    Latents are projected to ``dim``, a shared learned mask token fills every hidden position,
    a learned position embedding over the L positions is added, then timm Blocks, LayerNorm, linear.
    """

    def __init__(self, *, encoder_dim: int, num_tokens: int, patch_dim: int, dim: int, depth: int, num_heads: int):
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.blocks = nn.Sequential(*(Block(dim, num_heads, qkv_bias=True) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_dim)
        trunc_normal_(self.mask_token, std=0.02)
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_weights_vit_timm)

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        s, _, _ = latent.shape
        visible = self.embed(latent)
        tokens = self.mask_token.expand(s, self.pos_embed.shape[1], -1)
        tokens = tokens.scatter(1, ids_keep.unsqueeze(-1).expand(-1, -1, visible.shape[-1]), visible)
        return self.pred(self.norm(self.blocks(tokens + self.pos_embed)))


@dataclass
class MAEOutput:
    """loss: scalar; pred, target: [B, T', N, P] (target normalised if norm_pix); mask: bool [B, T', N]."""

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor


class MaskedAutoencoder(nn.Module):
    """encoder (visible tokens only) + decoder + masked normalised-pixel loss; clip -> :class:`MAEOutput`."""

    def __init__(self, encoder: MaskableViT, decoder: MAEDecoder, masking: Masking, norm_pix: bool = True):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.masking = masking
        self.norm_pix = norm_pix

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> MAEOutput:
        mask = self.masking(x.shape[0], self.encoder.grid, generator).to(x.device)
        ids_keep = visible_indices(self.encoder.to_sequences(mask))
        latent = self.encoder.encode_sequences(x, ids_keep)
        pred = self.encoder.from_sequences(self.decoder(latent, ids_keep))
        target = patchify(x, self.encoder.patch_size, self.encoder.tubelet_size)
        if self.norm_pix:
            target = normalise_patches(target)
        return MAEOutput(masked_patch_loss(pred, target, mask), pred, target, mask)


SSL_KEYS = {"masking", "mask_ratio", "decoder_dim", "decoder_depth", "decoder_heads", "norm_pix"}


def build_decoder(encoder: MaskableViT, ssl: dict) -> MAEDecoder:
    """A fresh decoder for ``encoder`` (the cascade builds a new one every generation)."""
    defaults = encoder.ssl_defaults
    return MAEDecoder(
        encoder_dim=encoder.embed_dim,
        num_tokens=encoder.steps_per_sequence * encoder.grid[1],
        patch_dim=encoder.patch_dim,
        dim=ssl.get("decoder_dim", defaults.decoder_dim),
        depth=ssl.get("decoder_depth", defaults.decoder_depth),
        num_heads=ssl.get("decoder_heads", defaults.decoder_heads),
    )


def build_masked_autoencoder(model_config: dict, encoder: MaskableViT | None = None) -> MaskedAutoencoder:
    """Pretraining model for ``model_config`` (its ``ssl`` dict overrides the encoder's defaults:
    ``masking``, ``mask_ratio``, ``decoder_dim``, ``decoder_depth``, ``decoder_heads``, ``norm_pix``).

    Pass ``encoder`` to reuse loaded weights; the decoder is always fresh.
    """
    encoder = encoder if encoder is not None else build_encoder(model_config)
    if not isinstance(encoder, MaskableViT):
        raise ValueError(f"encoder {model_config.get('encoder')!r} cannot be pretrained by masking "
                         f"(family {getattr(encoder, 'family', '?')}); use an mae2d_* or videomae_* encoder")
    ssl = model_config.get("ssl", {})
    unknown = set(ssl) - SSL_KEYS
    if unknown:
        raise ValueError(f"model_config['ssl'] has unknown keys {sorted(unknown)}; known: {sorted(SSL_KEYS)}")
    defaults = encoder.ssl_defaults
    masking = build_masking(ssl.get("masking", defaults.masking), ssl.get("mask_ratio", defaults.mask_ratio))
    return MaskedAutoencoder(encoder, build_decoder(encoder, ssl), masking, norm_pix=ssl.get("norm_pix", True))
