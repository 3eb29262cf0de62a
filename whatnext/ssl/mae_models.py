"""Masked-autoencoder pretraining models: MAE-2D (per-frame ViT) and VideoMAE (tubelet ViT).

One wrapper serves both: the masking strategy hides patches, the encoder runs on the visible
tokens only, a light decoder (separate module, so a cascade generation can reset it while
reloading the encoder) sees the visible latents and one mask token per reconstructed position and
predicts pixels there only, and the loss is the MSE to per-patch-normalised pixels of those masked
patches. The clip is cut into patches once, for the encoder's input and for the targets.

Shapes: clip x [B, T, C, H, W]; tubelet t (1 for MAE-2D), patch p; token grid [B, T', N] with
T' = T/t, N = (H/p)*(W/p); patch vector P = t*p*p*C; encoder sequences [S, L] (see
:mod:`whatnext.models.vit_base`); L_vis visible and L_rec reconstructed tokens per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm

from whatnext.models import build_encoder
from whatnext.models.clip_residual import minus_clip_mean
from whatnext.models.patches import patchify
from whatnext.models.vit_base import MaskableViT, gather_tokens
from whatnext.ssl.masking import Masking, build_masking, reconstructed_indices, visible_indices
from whatnext.ssl.tats import DEFAULTS as TATS_DEFAULTS, AdaptiveMasking, build_adaptive_masking


def normalise_patches(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch standardisation over the last (pixel) dimension: [..., P] -> [..., P].

    One fused ``layer_norm`` pass (population variance; MAE's reference divides by P - 1, a scale
    difference of sqrt(P / (P - 1)) < 0.2% for P >= 192).
    """
    return F.layer_norm(target, target.shape[-1:], eps=eps)


def patch_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over patches of the per-patch MSE: pred, target [..., P] -> scalar (fused forward and backward).

    ``weight`` [...] (one non-negative weight per patch): the weighted mean sum(w * mse) / sum(w) instead.
    """
    if weight is None:
        return F.mse_loss(pred, target)
    per_patch = (pred - target).pow(2).mean(-1)
    return (per_patch * weight).sum() / weight.sum().clamp_min(1e-12)


def motion_weights(residual: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-patch loss weights that favour what moves: residual patches [S, L, P] (each frame minus its clip's
    mean frame, patched) -> weights [S, L] = 1 + strength * e / mean(e), e the patch's mean squared residual
    (its motion energy) and mean(e) over the batch. ``strength`` 0 gives 1 everywhere (the plain MAE loss)."""
    energy = residual.pow(2).mean(-1)
    return 1.0 + strength * energy / energy.mean().clamp_min(1e-12)


TARGETS = ("pixels", "residual")


class MAEDecoder(nn.Module):
    """Light decoder: visible latents [S, L_vis, D_enc] at ``ids_keep`` -> pixel predictions [S, L_rec, P]
    at ``ids_rec``.

    Latents are projected to ``dim``; a shared learned mask token stands at each position to
    reconstruct; learned position embeddings over the L positions are added to both, then timm
    Blocks over the L_vis + L_rec tokens, and LayerNorm + linear on the reconstructed ones only.
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

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor, ids_rec: torch.Tensor) -> torch.Tensor:
        positions = self.pos_embed.expand(latent.shape[0], -1, -1)
        visible = self.embed(latent) + gather_tokens(positions, ids_keep)
        queries = self.mask_token + gather_tokens(positions, ids_rec)
        tokens = self.blocks(torch.cat([visible, queries], dim=1))
        return self.pred(self.norm(tokens[:, latent.shape[1]:]))


@dataclass
class MAEOutput:
    """loss: scalar; pred, target: [S, L_rec, P] at ``ids_rec`` [S, L_rec] (target normalised if norm_pix);
    mask: bool [B, T', N] (True = masked)."""

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    ids_rec: torch.Tensor


class MaskedAutoencoder(nn.Module):
    """encoder (visible tokens only) + decoder + masked normalised-pixel loss; clip -> :class:`MAEOutput`."""

    def __init__(self, encoder: MaskableViT, decoder: MAEDecoder, masking: Masking, norm_pix: bool = True,
                 decoder_keep: float = 1.0, target: str = "pixels", motion_weight: float = 0.0,
                 tats: AdaptiveMasking | None = None):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"unknown reconstruction target {target!r}; known: {', '.join(TARGETS)}")
        if motion_weight < 0:
            raise ValueError(f"motion_weight must be >= 0, got {motion_weight}")
        self.encoder = encoder
        self.decoder = decoder
        self.masking = masking
        self.norm_pix = norm_pix
        self.decoder_keep = decoder_keep
        self.target = target
        self.motion_weight = motion_weight
        self.tats = tats

    def residual_sequences(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, C, H, W] -> its motion residual (each frame minus the clip's mean frame) as patch
        vectors per sequence [S, L, P], in the encoder's layout."""
        encoder = self.encoder
        return encoder.to_sequences(patchify(minus_clip_mean(x), encoder.patch_size, encoder.tubelet_size))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, mask: torch.Tensor | None = None) -> MAEOutput:
        """Clip x [B, T, C, H, W]; the mask [B, T', N] is drawn from ``generator`` unless given. With TATS
        (``tats``) a training step past the warm-up draws it from the sampler, and its per-token
        reconstruction errors are recorded as the sampler's reward (:class:`~whatnext.ssl.tats.AdaptiveMasking`)."""
        patches = self.encoder.patch_sequences(x)
        adaptive = mask is None and self.tats is not None and self.training
        episode = None
        if adaptive and self.tats.active:
            with torch.no_grad():
                tokens = self.encoder.from_sequences(self.encoder.embed_patches(patches))
            mask, episode = self.tats.draw(tokens, self.masked_per_sequence, generator)
        elif mask is None:
            mask = self.masking(x.shape[0], self.encoder.grid, generator)
        mask = mask.to(x.device)
        seq_mask = self.encoder.to_sequences(mask)
        ids_keep = visible_indices(seq_mask)
        ids_rec = reconstructed_indices(seq_mask, self.decoder_keep, generator)
        latent = self.encoder.encode_patches(patches, ids_keep)
        loss, pred, target = self.reconstruct(patches, latent, ids_keep, ids_rec, self.loss_targets(x, patches))
        if episode is not None:
            episode.reward, episode.rewarded = self.token_errors(pred, target, ids_rec, seq_mask.shape)
        if adaptive:
            self.tats.record(episode)
        return MAEOutput(loss, pred, target, mask, ids_rec)

    @property
    def masked_per_sequence(self) -> int:
        """Masked tokens per encoder sequence under the family's random masking (TATS keeps the same count)."""
        return self.masking.num_masked(self.encoder.grid[1]) * self.encoder.steps_per_sequence

    def token_errors(self, pred: torch.Tensor, target: torch.Tensor, ids_rec: torch.Tensor,
                     seq_shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-token MSE [B, T', N], 0 where not reconstructed; bool [B, T', N], True where reconstructed) from
        pred, target [S, L_rec, P] at ``ids_rec`` [S, L_rec] of sequences ``seq_shape`` [S, L]; detached."""
        errors = (pred.detach().float() - target.detach().float()).pow(2).mean(-1)
        grid = torch.zeros(seq_shape, device=errors.device).scatter_(1, ids_rec, errors)
        rewarded = torch.zeros(seq_shape, dtype=torch.bool, device=errors.device).scatter_(1, ids_rec, True)
        return self.encoder.from_sequences(grid), self.encoder.from_sequences(rewarded)

    def loss_targets(self, x: torch.Tensor, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(target patches [S, L, P], per-patch loss weights [S, L] or None) of clip x [B, T, C, H, W] whose
        encoder input patches are ``patches``: those patches or the clip's motion residual (``target``), and
        :func:`motion_weights` when ``motion_weight`` > 0."""
        residual = self.residual_sequences(x) if self.target == "residual" or self.motion_weight > 0 else None
        target = residual if self.target == "residual" else patches
        weight = motion_weights(residual, self.motion_weight) if self.motion_weight > 0 else None
        return target, weight

    def reconstruct(self, patches: torch.Tensor, latent: torch.Tensor, ids_keep: torch.Tensor, ids_rec: torch.Tensor,
                    targets: tuple[torch.Tensor, torch.Tensor | None] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, pred, target) from the clip's patches [S, L, P] and the visible latents [S, L_vis, D]:
        decoder predictions and targets [S, L_rec, P] at the reconstructed positions only. ``targets``:
        :meth:`loss_targets` (default: ``patches``, unweighted)."""
        target_patches, weight = targets if targets is not None else (patches, None)
        pred = self.decoder(latent, ids_keep, ids_rec)
        target = gather_tokens(target_patches, ids_rec)
        if self.norm_pix:
            target = normalise_patches(target)
        rec_weight = None if weight is None else torch.gather(weight, 1, ids_rec)
        return patch_mse(pred, target, rec_weight), pred, target


SSL_KEYS = {"masking", "mask_ratio", "decoder_dim", "decoder_depth", "decoder_heads", "decoder_keep", "norm_pix",
            "target", "motion_weight", *TATS_DEFAULTS}
ADAPTIVE = ("random", "tats")  # ``masking`` values beyond the strategy names: the family's random one, or TATS over it


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
    ``masking`` (a strategy of :mod:`whatnext.ssl.masking`; ``"random"``: the family's own; ``"tats"``: the
    family's own until the TATS warm-up, then the sampler of :mod:`whatnext.ssl.tats`, set by the ``tats_*``
    keys), ``mask_ratio``, ``decoder_dim``, ``decoder_depth``, ``decoder_heads``, ``decoder_keep``,
    ``norm_pix``, ``target`` (``"pixels"`` or ``"residual"``: each frame minus its clip's mean frame),
    ``motion_weight`` (see :func:`motion_weights`)).

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
    name = ssl.get("masking", "random")
    masking = build_masking(defaults.masking if name in ADAPTIVE else name, ssl.get("mask_ratio", defaults.mask_ratio))
    keep = ssl.get("decoder_keep", defaults.decoder_keep)
    if not 0 < keep <= 1:
        raise ValueError(f"model_config['ssl']['decoder_keep'] must lie in (0, 1], got {keep}")
    return MaskedAutoencoder(encoder, build_decoder(encoder, ssl), masking, norm_pix=ssl.get("norm_pix", True),
                             decoder_keep=keep, target=ssl.get("target", "pixels"),
                             motion_weight=ssl.get("motion_weight", 0.0),
                             tats=build_adaptive_masking(encoder, ssl) if name == "tats" else None)
