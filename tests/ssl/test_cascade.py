"""The cascade reset: a generation loads its parent's encoder and nothing else."""

from __future__ import annotations

import pytest
import torch

from whatnext.runtime.checkpoint import load_checkpoint
from whatnext.runtime.trainer import TrainOptions
from whatnext.ssl.cascade import FAMILIES, open_generation, run_generation

MAE2D = FAMILIES["mae2d"]
TRAIN = TrainOptions(seed=4, max_epochs=2, batch_size=16, lr=1.5e-3, warmup_epochs=1.0, threads=1)


def generation(tiny_data_dir, init=None, **train):
    from dataclasses import replace

    return open_generation(MAE2D, data=tiny_data_dir, arch="mae2d_vit_tiny", img_size=32, init_encoder=init,
                           settings={"mask_ratio": 0.75}, splits=("val",), train=replace(TRAIN, **train))


@pytest.fixture(scope="module")
def two_generations(tiny_data_dir, tmp_path_factory):
    """Generation 1 from scratch, generation 2 from it, same seed and flags (68 val clips: 2 epochs of 4 steps each)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("cascade")
    common = dict(data=tiny_data_dir, arch="mae2d_vit_tiny", img_size=32, settings={"mask_ratio": 0.75}, splits=("val",), train=TRAIN)
    g1 = run_generation(MAE2D, init_encoder=None, out=folder / "g1.pt", metrics=folder / "g1.json", **common)
    g2 = run_generation(MAE2D, init_encoder=folder / "g1.pt", out=folder / "g2.pt", metrics=folder / "g2.json", **common)
    return folder, g1, g2


def test_generation_starts_from_the_parent_encoder_exactly(tiny_data_dir, two_generations):
    folder, _, _ = two_generations
    parent = load_checkpoint(folder / "g1.pt")["state_dict"]
    encoder = generation(tiny_data_dir, init=folder / "g1.pt").model.encoder.state_dict()
    assert encoder.keys() == parent.keys()
    for key in parent:
        assert torch.equal(encoder[key], parent[key]), key


def test_generation_decoder_is_the_fresh_decoder_of_its_seed(tiny_data_dir, two_generations):
    folder, _, _ = two_generations
    cascaded = generation(tiny_data_dir, init=folder / "g1.pt").model.decoder.state_dict()
    fresh = generation(tiny_data_dir).model.decoder.state_dict()
    for key in fresh:
        assert torch.equal(cascaded[key], fresh[key]), key


def test_generation_optimiser_is_fresh(tiny_data_dir, two_generations):
    folder, _, _ = two_generations
    trainer = generation(tiny_data_dir, init=folder / "g1.pt").trainer
    assert len(trainer.optimizer.state) == 0 and trainer.step == 0


def test_generation_schedule_restarts_at_the_warmup_start(tiny_data_dir, two_generations):
    folder, _, _ = two_generations
    trainer = generation(tiny_data_dir, init=folder / "g1.pt").trainer  # 4 steps/epoch, 4 warmup steps
    assert trainer.scheduler.last_epoch == 0
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([1.5e-3 / 5, 1.5e-3 / 5])


def test_generation_two_records_its_number_and_parent(two_generations):
    folder, g1, g2 = two_generations
    meta = load_checkpoint(folder / "g2.pt")["meta"]
    assert (g1["generation"], g2["generation"]) == (1, 2)
    assert meta["parent"] == str(folder / "g1.pt") and len(meta["parent_sha256"]) == 64

