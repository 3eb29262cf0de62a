"""Fixtures of the finetune tests: a micro data dir and SSL encoder checkpoints of both families."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

MICRO_SIZE = 16  # px: 90 train / 32 val / 14 test clips at scale 0.002


@pytest.fixture(scope="session")
def micro_data_dir(tmp_path_factory) -> Path:
    """A generated data dir (scale 0.002, 16 px, seed 0) with norm stats; read-only."""
    from whatnext.data.norm_stats import compute_norm_stats
    from whatnext.data.synth import generate
    from whatnext.runtime.atomic import write_json

    out = tmp_path_factory.mktemp("micro_data")
    generate(out, scale=0.002, size=MICRO_SIZE, seed=0, progress=False)
    write_json(out / "norm_stats.json", compute_norm_stats(out))
    return out


def _encoder_checkpoint(path: Path, arch: str) -> Path:
    from whatnext.models import build_encoder
    from whatnext.runtime.checkpoint import save_checkpoint

    config = {"encoder": arch, "img_size": MICRO_SIZE, "num_frames": 4, "ssl": {"mask_ratio": 0.75}}
    torch.manual_seed(0)
    save_checkpoint(path, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict())
    return path


@pytest.fixture(scope="session")
def mae2d_encoder_ckpt(tmp_path_factory) -> Path:
    return _encoder_checkpoint(tmp_path_factory.mktemp("enc") / "mae2d.pt", "mae2d_vit_tiny")


@pytest.fixture(scope="session")
def videomae_encoder_ckpt(tmp_path_factory) -> Path:
    return _encoder_checkpoint(tmp_path_factory.mktemp("enc") / "videomae.pt", "videomae_vit_tiny")


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
