"""Two tiny cascade generations on the generated data: the reconstruction loss keeps falling (slow: ~30 s CPU)."""

from __future__ import annotations

import pytest
import torch

from whatnext.runtime.trainer import TrainOptions
from whatnext.ssl.cascade import ALL_SPLITS, FAMILIES, run_generation


@pytest.mark.slow
def test_second_generation_ends_with_a_lower_reconstruction_loss(tiny_data_dir, tmp_path):
    # 587 clips, 4 epochs of 18 steps per generation (a full warmup + cosine cycle each): a bounded
    # budget, as in the seed, where generation 1 ends before converging (measured: 0.903 -> 0.852).
    # With 8 epochs generation 1 already reaches the tiny model's plateau (~0.84) and generation 2
    # ends level with it, within the last epoch's noise (+-0.01).
    torch.set_num_threads(1)
    train = TrainOptions(seed=0, epochs=4, batch_size=32, lr=1.5e-3, warmup_epochs=1.0)
    common = dict(data=tiny_data_dir, arch="mae2d_vit_tiny", img_size=32, mask_ratio=0.75, splits=ALL_SPLITS, train=train)
    g1 = run_generation(FAMILIES["mae2d"], init_encoder=None, out=tmp_path / "g1.pt", metrics=tmp_path / "g1.json", **common)
    g2 = run_generation(FAMILIES["mae2d"], init_encoder=tmp_path / "g1.pt", out=tmp_path / "g2.pt",
                        metrics=tmp_path / "g2.json", **common)
    assert g2["final_loss"] < g1["final_loss"] - 0.02
