"""Every encoder maps [B, T, C, H, W] to tokens [B, T', N, D]; every head to logits [B, 33]."""

import pytest
import torch

from whatnext.models import build_encoder, build_model, list_encoders, list_heads

TINY_ENCODERS = ["mae2d_vit_tiny", "videomae_vit_tiny", "conv2d_tiny", "conv3d_tiny"]
SMALLEST_SIZE = {"efficientformer_l1": 224, "efficientformer_l3": 224, "efficientformer_l7": 224}
BUILD_ONLY = ["mae2d_vit_b16", "videomae_vit_s16", "videomae_vit_b16", "efficientformer_l3", "efficientformer_l7",
              "efficientformerv2_s2", "efficientformerv2_l", "nextvit_base", "maxvit_tiny"]  # larger variants
STEPS = {"videomae_vit_tiny": 2, "videomae_vit_s16": 2, "videomae_vit_b16": 2}  # T' of 4 frames


@pytest.mark.parametrize("head", list_heads())
@pytest.mark.parametrize("encoder", TINY_ENCODERS)
def test_tiny_encoder_with_each_head_gives_logits_and_step_features(encoder, head):
    model = build_model({"encoder": encoder, "head": head, "img_size": 32, "num_frames": 4})
    x = torch.randn(2, 4, 3, 32, 32)
    logits, features = model.forward_with_features(x)
    assert logits.shape == (2, 33)
    assert features.shape == (2, STEPS.get(encoder, 4), model.encoder.embed_dim)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("encoder", [name for name in list_encoders() if name not in TINY_ENCODERS + BUILD_ONLY])
def test_every_encoder_runs_at_its_smallest_input(encoder):
    """Two frames (one tubelet) to keep the large timm models quick."""
    size = SMALLEST_SIZE.get(encoder, 32)
    model = build_model({"encoder": encoder, "head": "attn", "img_size": size, "num_frames": 2}).eval()
    with torch.no_grad():
        tokens = model.encoder(torch.randn(1, 2, 3, size, size))
        logits = model.head(tokens)
    assert tokens.shape[:2] == (1, STEPS.get(encoder, 4) // 2) and tokens.shape[3] == model.encoder.embed_dim
    assert logits.shape == (1, 33)


@pytest.mark.parametrize("encoder", BUILD_ONLY)
def test_larger_variants_build(encoder):
    """Same code as the family's smallest variant, which runs above; built on the meta device (shapes only)."""
    with torch.device("meta"):
        model = build_model({"encoder": encoder, "head": "attn", "img_size": SMALLEST_SIZE.get(encoder, 32)})
    assert model.head.fc.in_features == model.encoder.embed_dim


def test_forward_with_features_matches_forward_and_encode():
    model = build_model({"encoder": "conv2d_tiny", "head": "lstm", "img_size": 32}).eval()
    x = torch.randn(2, 4, 3, 32, 32)
    logits, features = model.forward_with_features(x)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(features, model.encode(x))


@pytest.mark.parametrize("name", ["conv2d_tiny", "conv3d_tiny"])
def test_a_conv_encoder_on_the_clip_residual_ignores_a_static_background(name):
    """Frames minus their clip mean: a background shared by every frame cancels; the raw net sees it."""
    torch.manual_seed(0)
    config = {"encoder": name, "img_size": 32, "num_frames": 4}
    x = torch.randn(2, 4, 3, 32, 32)
    background = 3 * torch.randn(2, 1, 3, 32, 32)
    residual = build_encoder(config | {"encoder_kwargs": {"clip_residual": True}}).eval()
    torch.testing.assert_close(residual(x + background), residual(x), rtol=1e-4, atol=1e-4)
    raw = build_encoder(config).eval()
    assert not torch.allclose(raw(x + background), raw(x), atol=1e-2)
