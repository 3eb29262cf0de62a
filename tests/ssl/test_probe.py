"""The fixed-mask reconstruction probe that compares cascade generations."""

import pytest
import torch

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset
from whatnext.ssl.mae_models import build_masked_autoencoder
from whatnext.ssl.probe import probe_loss


def _model(**ssl):
    torch.manual_seed(0)
    return build_masked_autoencoder({"encoder": "videomae_vit_tiny", "img_size": 32, "num_frames": 4, "ssl": ssl})


def test_probe_gives_the_same_value_twice_and_leaves_the_mode_alone(tiny_data_dir):
    model = _model().train()
    clips = ClipDataset(tiny_data_dir, "val", frame_size=32)
    normaliser = ClipNormaliser.from_stats_file(tiny_data_dir / "norm_stats.json")
    first = probe_loss(model, clips, normaliser, count=40, batch_size=16)
    assert first == probe_loss(model, clips, normaliser, count=40, batch_size=16)
    assert model.training and 0.5 < first < 2.0  # an untrained decoder: about the unit variance of the targets


def test_probe_reconstructs_every_masked_token_whatever_the_decoder_keep(tiny_data_dir):
    clips = ClipDataset(tiny_data_dir, "val", frame_size=32)
    normaliser = ClipNormaliser.from_stats_file(tiny_data_dir / "norm_stats.json")
    full, half = _model(), _model(decoder_keep=0.5)
    assert probe_loss(full, clips, normaliser, count=20) == pytest.approx(probe_loss(half, clips, normaliser, count=20))


def test_probe_of_an_empty_split_names_the_csv(tiny_data_dir):
    clips = ClipDataset(tiny_data_dir, "val", frame_size=32)
    clips.clip_ids, clips.members, clips.labels = [], [], clips.labels[:0]
    with pytest.raises(ValueError, match="val"):
        probe_loss(_model(), clips, ClipNormaliser([0.5] * 3, [0.25] * 3))
