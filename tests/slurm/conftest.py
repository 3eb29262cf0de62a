"""Helpers of the slurm tests: the repo root on sys.path (workflow_scripts) and a small hand-made config."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


@pytest.fixture
def challenge_dir(tmp_path) -> Path:
    """Challenge-format CSVs with 100 train, 20 val and 10 test clips (frames are never read here)."""
    folder = tmp_path / "challenge"
    folder.mkdir()
    for split, n in (("train", 100), ("val", 20), ("test", 10)):
        header = "video_id" if split == "test" else "video_id,label"
        rows = [str(i) if split == "test" else f"{i},0" for i in range(n)]
        (folder / f"{split}.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


@pytest.fixture
def config(tmp_path, challenge_dir) -> dict:
    """Two SSL generations (10 epochs), a cascade grid of one head x rounds {0, 1} (4 epochs),
    one scratch member (2 epochs); 60 ms per unit (1000 units a minute), 1 min start-up, no headroom,
    no deadline."""
    return {
        "results": str(tmp_path / "results"),
        "seed": 0,
        "deadline": None,
        "data": {"source": "challenge", "challenge": {"dir": str(challenge_dir)}},
        "train": {"max_epochs": 3},
        "ssl": {"cascade": {"method": "videomae", "generations": 2, "train": {"max_epochs": 10}}},
        "members": {
            "cascade": {"ssl": "cascade", "generations": [2], "heads": ["attn"], "rounds": [0, 1], "train": {"max_epochs": 4}},
            "scratch": {"variants": {"conv3d": {"arch": "conv3d_tiny", "head": "attn", "train": {"max_epochs": 2}}}},
        },
        "inference": {"tta": "five_crop", "flip": True},
        "resources": {
            "headroom": 1,
            "attempt_growth": 2,
            "overhead_min": 1,
            "deadline_margin_min": 30,
            "ms_per_unit": {rule: 60 for rule in ("ssl_pretrain", "finetune_cascade", "finetune_scratch", "cache_probs")},
        },
    }


def pytest_collection_modifyitems(session, config, items):
    """Where the real-Slurm e2e is collected and allowed, start it now and move its test (which only waits for
    it) to the end: it overlaps the whole rest of the suite (in CI, 2026-12-03, its wait at 69% of the run
    held the remaining tests back 192 s)."""
    sys.path[:0] = [str(REPO / "tests"), str(Path(__file__).resolve().parent)]
    from smoke_checks import REAL_SLURM_E2E

    import e2e_background

    e2e = [item for item in items if item.nodeid.endswith(e2e_background.E2E_TEST)]
    if REAL_SLURM_E2E and e2e:
        e2e_background.start()
    items[:] = [item for item in items if item not in e2e] + e2e
