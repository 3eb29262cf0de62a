"""Two tiny cascade generations on the generated data: the reconstruction loss keeps falling (slow: ~1 min CPU)."""

from __future__ import annotations

import pytest
import torch

from whatnext.runtime.trainer import TrainOptions
from whatnext.ssl.cascade import ALL_SPLITS, FAMILIES, run_generation


@pytest.mark.slow
def test_second_generation_ends_with_a_lower_reconstruction_loss(tiny_data_dir, tmp_path):
    # 587 clips, 8 epochs of 18 steps per generation: long enough for the reloaded encoder to
    # outweigh the fresh decoder and re-warmed schedule (with ~16 steps per generation it does not).
    torch.set_num_threads(1)
    train = TrainOptions(seed=0, epochs=8, batch_size=32, lr=1.5e-3, warmup_epochs=1.0)
    common = dict(data=tiny_data_dir, arch="mae2d_vit_tiny", img_size=32, mask_ratio=0.75, splits=ALL_SPLITS, train=train)
    g1 = run_generation(FAMILIES["mae2d"], init_encoder=None, out=tmp_path / "g1.pt", metrics=tmp_path / "g1.json", **common)
    g2 = run_generation(FAMILIES["mae2d"], init_encoder=tmp_path / "g1.pt", out=tmp_path / "g2.pt",
                        metrics=tmp_path / "g2.json", **common)
    assert g2["final_loss"] < g1["final_loss"]
