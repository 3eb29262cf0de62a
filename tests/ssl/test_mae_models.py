"""MAE-2D / VideoMAE pretraining models: visible-only encoding, masked-only loss, patch layout."""

import pytest
import torch

from whatnext.models import build_encoder
from whatnext.models.patches import patchify, unpatchify
from whatnext.ssl.mae_models import build_masked_autoencoder, gather_tokens, motion_weights, normalise_patches, patch_mse
from whatnext.ssl.masking import build_masking, reconstructed_indices, visible_indices

torch.set_num_threads(1)
FAMILIES = ["mae2d_vit_tiny", "videomae_vit_tiny"]


def _config(name: str, **ssl) -> dict:
    return {"encoder": name, "img_size": 32, "num_frames": 4, "ssl": ssl}


def _clip(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _mask_and_ids(encoder, ratio: float):
    """The encoder family's own masking: mask [B, T', N], sequence mask [S, L], visible ids [S, L_vis]."""
    mask = build_masking(encoder.ssl_defaults.masking, ratio)(2, encoder.grid, torch.Generator().manual_seed(0))
    seq_mask = encoder.to_sequences(mask)
    return mask, seq_mask, visible_indices(seq_mask)


@pytest.mark.parametrize("name", FAMILIES)
def test_visible_only_encoding_equals_full_encoding_with_masked_keys_blocked(name):
    """Running the Blocks on visible tokens only == running them on all tokens with attention to
    masked tokens forbidden, read at the visible positions."""
    torch.manual_seed(0)
    encoder = build_encoder(_config(name)).eval()
    x = _clip()
    _, seq_mask, ids_keep = _mask_and_ids(encoder, 0.75)
    blocked = torch.zeros(seq_mask.shape).masked_fill(seq_mask, float("-inf"))[:, None, None, :]  # [S, 1, 1, L]
    full = encoder.encode_sequences(x, attn_mask=blocked)
    full_at_visible = torch.gather(full, 1, ids_keep.unsqueeze(-1).expand(-1, -1, full.shape[-1]))
    torch.testing.assert_close(encoder.encode_sequences(x, ids_keep), full_at_visible, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_full_encoding_without_blocking_differs_at_visible_tokens(name):
    """Control for the test above: masked tokens do change visible outputs when they are attended to."""
    torch.manual_seed(0)
    encoder = build_encoder(_config(name)).eval()
    x = _clip()
    _, _, ids_keep = _mask_and_ids(encoder, 0.75)
    full = encoder.encode_sequences(x)
    full_at_visible = torch.gather(full, 1, ids_keep.unsqueeze(-1).expand(-1, -1, full.shape[-1]))
    assert not torch.allclose(encoder.encode_sequences(x, ids_keep), full_at_visible, atol=1e-4)


def test_encoder_never_sees_masked_pixels():
    torch.manual_seed(0)
    encoder = build_encoder(_config("mae2d_vit_tiny")).eval()
    x = _clip()
    mask, _, ids_keep = _mask_and_ids(encoder, 0.75)
    patches = patchify(x, 8)
    scrambled = unpatchify(torch.where(mask.unsqueeze(-1), torch.randn_like(patches), patches), 8, 1, 3, 32)
    assert not torch.equal(scrambled, x)
    torch.testing.assert_close(encoder.encode_sequences(scrambled, ids_keep), encoder.encode_sequences(x, ids_keep))


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_targets_are_exactly_the_masked_patches(name):
    """The decoder predicts, and the loss compares, the normalised pixels of masked patches only."""
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config(name))
    x = _clip()
    mask, seq_mask, _ = _mask_and_ids(model.encoder, model.masking.ratio)
    out = model(x, mask=mask)
    assert seq_mask.gather(1, out.ids_rec).all() and out.ids_rec.shape[1] == int(seq_mask[0].sum())
    patches = model.encoder.to_sequences(patchify(x, model.encoder.patch_size, model.encoder.tubelet_size))
    torch.testing.assert_close(out.target, normalise_patches(gather_tokens(patches, out.ids_rec)))
    assert out.pred.shape == out.target.shape
    torch.testing.assert_close(out.loss, (out.pred - out.target).square().mean())


def test_visible_patch_pixels_reach_the_loss_only_through_the_encoder():
    """Gradient w.r.t. the pixels: visible patches get it through the encoder; with the encoder frozen
    out (latents detached), only masked patches (as targets) do."""
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config("mae2d_vit_tiny"))
    x = _clip().requires_grad_()
    mask, seq_mask, ids_keep = _mask_and_ids(model.encoder, 0.75)
    patches = model.encoder.patch_sequences(x)
    latent = model.encoder.encode_patches(patches, ids_keep).detach()
    loss, _, _ = model.reconstruct(patches, latent, ids_keep, reconstructed_indices(seq_mask))
    loss.backward()
    per_patch = patchify(x.grad, 8).abs().sum(-1)  # [B, T, N]
    assert (per_patch[~mask] == 0).all() and (per_patch[mask] > 0).all()


def test_decoder_keep_reconstructs_a_seeded_subset_of_the_masked_tokens():
    seq_mask = torch.zeros(3, 20, dtype=torch.bool)
    seq_mask[:, :16] = True  # 16 masked per sequence
    ids = reconstructed_indices(seq_mask, 0.5, torch.Generator().manual_seed(0))
    assert ids.shape == (3, 8) and (ids < 16).all()
    assert all(row.unique().numel() == 8 and torch.equal(row, row.sort().values) for row in ids)
    again = reconstructed_indices(seq_mask, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(ids, again) and not torch.equal(ids[0], ids[1])
    assert torch.equal(reconstructed_indices(seq_mask), torch.arange(16).expand(3, -1))


def test_decoder_keep_halves_the_reconstructed_tokens_of_the_model():
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config("videomae_vit_tiny", decoder_keep=0.5))
    out = model(_clip(), torch.Generator().manual_seed(0))
    masked = int(model.encoder.to_sequences(out.mask)[0].sum())
    assert out.pred.shape[1] == round(masked / 2) and torch.isfinite(out.loss)


def test_decoder_keep_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="decoder_keep"):
        build_masked_autoencoder(_config("videomae_vit_tiny", decoder_keep=0.0))


def test_loss_of_hand_made_errors():
    """Two reconstructed patches, one predicted exactly and one off by 1 everywhere -> loss 0.5."""
    target = torch.zeros(1, 2, 4)
    pred = target.clone()
    pred[0, 1] += 1.0
    assert patch_mse(pred, target).item() == pytest.approx(0.5)


def test_weighted_loss_of_hand_made_errors():
    """Errors 0 and 1 on two patches weighted 1 and 3 -> (0 * 1 + 1 * 3) / 4 = 0.75; equal weights -> plain mean."""
    target = torch.zeros(1, 2, 4)
    pred = target.clone()
    pred[0, 1] += 1.0
    assert patch_mse(pred, target, torch.tensor([[1.0, 3.0]])).item() == pytest.approx(0.75)
    assert patch_mse(pred, target, torch.full((1, 2), 2.0)).item() == pytest.approx(0.5)


def test_motion_weights_favour_moving_patches():
    """Energies 0 and 2 (batch mean 1) at strength 4 -> weights 1 and 9; strength 0 -> all 1."""
    residual = torch.zeros(1, 2, 4)
    residual[0, 1] = 2.0**0.5
    torch.testing.assert_close(motion_weights(residual, 4.0), torch.tensor([[1.0, 9.0]]))
    torch.testing.assert_close(motion_weights(residual, 0.0), torch.ones(1, 2))


def _moving_square_clip() -> torch.Tensor:
    """A static random background with a bright 8x8 square moving one patch right per frame: [1, 4, 3, 32, 32]."""
    x = torch.randn(1, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0)).expand(1, 4, 3, 32, 32).clone()
    for k in range(4):
        x[0, k, :, 8:16, 8 * k:8 * k + 8] = 5.0
    return x


@pytest.mark.parametrize("name", FAMILIES)
def test_residual_target_is_each_frame_minus_the_clip_mean(name):
    """target="residual": the encoder still sees raw pixels, the loss compares the masked patches of
    x - mean_t(x) (static background -> exactly zero there)."""
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config(name, target="residual", norm_pix=False))
    x = _moving_square_clip()
    mask, _, _ = _mask_and_ids(model.encoder, model.masking.ratio)
    out = model(x.expand(2, -1, -1, -1, -1), mask=mask)
    enc = model.encoder
    residual = enc.to_sequences(patchify((x - x.mean(1, keepdim=True)).expand(2, -1, -1, -1, -1), enc.patch_size, enc.tubelet_size))
    torch.testing.assert_close(out.target, gather_tokens(residual, out.ids_rec))
    torch.testing.assert_close(enc.patch_sequences(x), enc.to_sequences(patchify(x, enc.patch_size, enc.tubelet_size)))
    energy = residual[0].abs().sum(-1)  # [L]: the top row of patches is static background, row 1 holds the square
    assert energy[:4].eq(0).all() and energy[4:8].gt(0).any()


def test_motion_weight_changes_the_loss_only_through_the_weights():
    """Same weights, masks and clip: motion_weight 0 gives the plain loss; > 0 the weighted mean of the same
    per-patch errors, with the moving square's patches weighted above the static ones."""
    torch.manual_seed(0)
    plain = build_masked_autoencoder(_config("mae2d_vit_tiny"))
    weighted = build_masked_autoencoder(_config("mae2d_vit_tiny", motion_weight=4.0))
    weighted.load_state_dict(plain.state_dict())
    x = _moving_square_clip().expand(2, -1, -1, -1, -1)
    mask, _, _ = _mask_and_ids(plain.encoder, 0.75)
    a, b = plain(x, mask=mask), weighted(x, mask=mask)
    torch.testing.assert_close(a.pred, b.pred)
    per_patch = (a.pred - a.target).square().mean(-1)
    weights = gather_tokens(motion_weights(weighted.residual_sequences(x), 4.0).unsqueeze(-1), a.ids_rec).squeeze(-1)
    torch.testing.assert_close(b.loss, (per_patch * weights).sum() / weights.sum())
    assert weights.max() > 2 * weights.min() and not torch.allclose(a.loss, b.loss)


def test_bad_target_or_motion_weight_is_refused():
    with pytest.raises(ValueError, match="unknown reconstruction target 'flow'"):
        build_masked_autoencoder(_config("videomae_vit_tiny", target="flow"))
    with pytest.raises(ValueError, match="motion_weight must be >= 0"):
        build_masked_autoencoder(_config("videomae_vit_tiny", motion_weight=-1.0))


def test_normalised_patches_have_zero_mean_unit_variance():
    patches = normalise_patches(torch.rand(3, 5, 48) * 4 + 2)
    torch.testing.assert_close(patches.mean(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(patches.var(-1, correction=0), torch.ones(3, 5), atol=1e-4, rtol=0)


def test_patchify_orders_tokens_by_time_row_column():
    """A clip whose pixels hold their tubelet's index patchifies into constant rows 0, 1, 2, ..."""
    t, p, u = 4, 8, 2
    cell = torch.arange(32) // p
    index = cell[:, None] * 4 + cell[None, :]  # [H, W]: patch index 0..15 in row-major order
    clip = torch.stack([index + 16 * (k // u) for k in range(t)]).float()  # [T, H, W]
    clip = clip[None, :, None].expand(1, t, 3, 32, 32)
    patches = patchify(clip, p, u)
    assert patches.shape == (1, 2, 16, u * p * p * 3)
    expected = torch.arange(32).float().view(1, 2, 16, 1).expand_as(patches)
    assert torch.equal(patches, expected)


@pytest.mark.parametrize("tubelet", [1, 2])
def test_unpatchify_inverts_patchify(tubelet):
    x = _clip()
    torch.testing.assert_close(unpatchify(patchify(x, 8, tubelet), 8, tubelet, 3, 32), x, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "steps", "ratio"), [("mae2d_vit_tiny", 4, 0.75), ("videomae_vit_tiny", 2, 0.875)])
def test_pretraining_model_outputs(name, steps, ratio):
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config(name))
    out = model(_clip(), torch.Generator().manual_seed(0))
    patch_dim = 8 * 8 * 3 * (4 // steps)
    sequences, masked = (2 * steps, 12) if steps == 4 else (2, 28)  # per frame: 16 x 0.75; per clip: 32 x 0.875
    assert out.pred.shape == out.target.shape == (sequences, round(masked * model.decoder_keep), patch_dim)
    assert out.mask.shape == (2, steps, 16) and out.mask.float().mean().item() == pytest.approx(ratio)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_same_generator_seed_same_loss():
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config("videomae_vit_tiny"))
    first = model(_clip(), torch.Generator().manual_seed(4)).loss
    second = model(_clip(), torch.Generator().manual_seed(4)).loss
    assert torch.equal(first, second)


def test_ssl_overrides_change_masking_and_decoder():
    model = build_masked_autoencoder(_config("mae2d_vit_tiny", mask_ratio=0.5, decoder_dim=24, decoder_depth=2))
    assert model.masking.ratio == 0.5
    assert model.decoder.embed.out_features == 24 and len(model.decoder.blocks) == 2


def test_given_encoder_is_reused_with_a_fresh_decoder():
    encoder = build_encoder(_config("mae2d_vit_tiny"))
    first = build_masked_autoencoder(_config("mae2d_vit_tiny"), encoder=encoder)
    second = build_masked_autoencoder(_config("mae2d_vit_tiny"), encoder=encoder)
    assert first.encoder is encoder and second.encoder is encoder
    assert first.decoder is not second.decoder
    assert not torch.equal(first.decoder.pred.weight, second.decoder.pred.weight)


def test_unknown_ssl_key_raises():
    with pytest.raises(ValueError, match=r"unknown keys \['ratio'\]"):
        build_masked_autoencoder(_config("mae2d_vit_tiny", ratio=0.5))


def test_non_vit_encoder_cannot_be_mask_pretrained():
    with pytest.raises(ValueError, match="conv2d_tiny.*cannot be pretrained by masking"):
        build_masked_autoencoder(_config("conv2d_tiny"))


def test_reconstruction_loss_falls_when_fitting_one_batch():
    """Same clips and masks every step: the model starts memorising them, so the loss falls below
    its initial ~1 (the loss of predicting the mean, as normalised targets have unit variance)."""
    torch.manual_seed(0)
    model = build_masked_autoencoder(_config("mae2d_vit_tiny"))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = _clip()
    losses = []
    for _ in range(20):
        loss = model(x, torch.Generator().manual_seed(0)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
