"""Encoder weights move from an SSL generation into a classifier; anything else is a clear error."""

import pytest
import torch

from whatnext.models import build_encoder, build_model
from whatnext.runtime.checkpoint import CheckpointError, load_encoder_checkpoint, load_encoder_weights, save_checkpoint

ENCODER = {"encoder": "mae2d_vit_tiny", "img_size": 32, "num_frames": 4}


def test_ssl_encoder_weights_load_into_the_classifier_encoder():
    encoder = build_encoder(ENCODER)
    classifier = build_model(ENCODER | {"head": "perceiver"})
    load_encoder_weights(classifier, encoder.state_dict(), "gen1.pt")
    loaded = classifier.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in encoder.state_dict().items())


def test_weights_of_another_family_raise_naming_the_source():
    videomae = build_encoder(ENCODER | {"encoder": "videomae_vit_tiny"})
    classifier = build_model(ENCODER | {"head": "attn"})
    with pytest.raises(CheckpointError, match=r"gen7\.pt: weights do not fit"):
        load_encoder_weights(classifier, videomae.state_dict(), "gen7.pt")


def test_weights_of_another_input_size_raise():
    other_size = build_encoder(ENCODER | {"img_size": 64})
    with pytest.raises(CheckpointError, match="gen2.pt"):
        load_encoder_weights(build_encoder(ENCODER), other_size.state_dict(), "gen2.pt")


def test_encoder_checkpoint_round_trip(tmp_path):
    encoder = build_encoder(ENCODER)
    path = tmp_path / "enc.pt"
    save_checkpoint(path, kind="encoder", model_config=ENCODER, state_dict=encoder.state_dict())
    classifier = build_model(ENCODER | {"head": "lstm"})
    ckpt = load_encoder_checkpoint(classifier, path, "mae2d_vit_tiny")
    assert ckpt["model_config"] == ENCODER
    assert torch.equal(classifier.encoder.pos_embed, encoder.pos_embed)


def test_encoder_checkpoint_of_another_architecture_raises(tmp_path):
    path = tmp_path / "videomae.pt"
    config = ENCODER | {"encoder": "videomae_vit_tiny"}
    save_checkpoint(path, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict())
    with pytest.raises(CheckpointError, match=r"videomae\.pt: holds encoder 'videomae_vit_tiny', expected 'mae2d_vit_tiny'"):
        load_encoder_checkpoint(build_model(ENCODER | {"head": "attn"}), path, "mae2d_vit_tiny")


def test_truncated_encoder_checkpoint_raises(tmp_path):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, kind="encoder", model_config=ENCODER, state_dict=build_encoder(ENCODER).state_dict())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"enc\.pt: unreadable or truncated"):
        load_encoder_checkpoint(build_model(ENCODER | {"head": "attn"}), path, "mae2d_vit_tiny")


def test_classifier_checkpoint_is_not_an_encoder_checkpoint(tmp_path):
    path = tmp_path / "member.pt"
    classifier = build_model(ENCODER | {"head": "attn"})
    save_checkpoint(path, kind="classifier", model_config=classifier.model_config, state_dict=classifier.state_dict())
    with pytest.raises(CheckpointError, match="expected 'encoder'"):
        load_encoder_checkpoint(classifier, path, "mae2d_vit_tiny")
