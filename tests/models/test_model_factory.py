"""build_model / build_encoder: names from the registry, config validation, determinism."""

import pytest
import torch

from whatnext.models import build_encoder, build_model, list_encoders, list_heads

TINY = {"encoder": "mae2d_vit_tiny", "head": "attn", "img_size": 32, "num_frames": 4}


def test_registry_lists_every_family_and_head():
    for name in ["mae2d_vit_tiny", "mae2d_vit_b16", "videomae_vit_tiny", "videomae_vit_s16", "videomae_vit_b16",
                 "conv2d_tiny", "conv3d_tiny", "efficientformer_l1", "efficientformer_l3", "efficientformer_l7",
                 "efficientformerv2_s2", "efficientformerv2_l", "nextvit_small", "nextvit_base", "maxvit_tiny"]:
        assert name in list_encoders()
    assert list_heads() == ["attn", "hybrid", "lstm", "lstm2", "perceiver", "relational"]


def test_unknown_encoder_name_raises_with_known_names():
    with pytest.raises(ValueError, match=r"unknown encoder 'vit_huge'.*mae2d_vit_tiny"):
        build_model(TINY | {"encoder": "vit_huge"})


def test_unknown_head_name_raises_with_known_names():
    with pytest.raises(ValueError, match=r"unknown head 'gru'.*perceiver"):
        build_model(TINY | {"head": "gru"})


def test_unknown_config_key_raises():
    with pytest.raises(ValueError, match=r"unknown keys \['patch'\]"):
        build_encoder(TINY | {"patch": 8})


def test_bad_encoder_override_raises_naming_the_encoder():
    with pytest.raises(ValueError, match=r"encoder 'conv2d_tiny': bad arguments"):
        build_encoder(TINY | {"encoder": "conv2d_tiny", "encoder_kwargs": {"depth": 3}})


def test_efficientformer_v1_rejects_sizes_other_than_224():
    with pytest.raises(ValueError, match="accepts only img_size 224"):
        build_encoder({"encoder": "efficientformer_l1", "img_size": 64})


def test_timm_hybrids_reject_sizes_not_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_encoder({"encoder": "maxvit_tiny", "img_size": 80})


def test_same_seed_builds_same_weights():
    torch.manual_seed(3)
    first = build_model(TINY).state_dict()
    torch.manual_seed(3)
    second = build_model(TINY).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_classifier_keeps_its_config():
    assert build_model(TINY).model_config == TINY


@pytest.mark.parametrize(("name", "millions"), [("mae2d_vit_b16", 85.8), ("videomae_vit_s16", 21.8),
                                                ("videomae_vit_b16", 86.1)])
def test_paper_size_vits_have_reference_parameter_counts(name, millions):
    """ViT-S/B backbones (without temporal attention) match their published sizes (~22M / ~86M)."""
    with torch.device("meta"):  # shapes only, no allocation
        encoder = build_encoder({"encoder": name, "img_size": 224})
    spatial = sum(p.numel() for n, p in encoder.named_parameters() if not n.startswith("temporal."))
    assert spatial / 1e6 == pytest.approx(millions, abs=0.5)


def test_mae2d_vit_b16_has_temporal_attention_in_its_last_six_blocks():
    with torch.device("meta"):
        encoder = build_encoder({"encoder": "mae2d_vit_b16", "img_size": 224})
    assert sorted(map(int, encoder.temporal)) == [6, 7, 8, 9, 10, 11]


def test_vit_rejects_a_clip_of_another_shape():
    encoder = build_encoder(TINY)
    with pytest.raises(ValueError, match=r"built for clips \[B, 4, 3, 32, 32\], got \[1, 4, 3, 64, 64\]"):
        encoder(torch.randn(1, 4, 3, 64, 64))
