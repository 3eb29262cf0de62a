"""Shared fixtures for every area's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SCALE = 0.01  # 450 train / 68 val / 69 test clips
TINY_SIZE = 32  # px


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A generated data dir in the challenge format (frames.zip, train/val/test CSVs, norm_stats.json):
    scale 0.01, 32 px frames, seed 0; built once per test session in a few seconds. Read-only: copy it
    before changing anything."""
    from whatnext.data.norm_stats import compute_norm_stats
    from whatnext.data.synth import generate
    from whatnext.runtime.atomic import write_json

    out = tmp_path_factory.mktemp("tiny_data")
    generate(out, scale=TINY_SCALE, size=TINY_SIZE, seed=0, progress=False)
    write_json(out / "norm_stats.json", compute_norm_stats(out))
    return out
