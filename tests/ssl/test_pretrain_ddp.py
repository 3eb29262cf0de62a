"""The SSL CLI on 2 data-parallel ranks (gloo, CPU): exit 75 when stopped, resumed, outputs written once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from whatnext.runtime.checkpoint import load_checkpoint
from whatnext.runtime.trainer import STOP_AFTER_STEPS_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mae2d_generation_on_two_ranks_stops_with_75_and_resumes(tiny_data_dir, tmp_path):
    """MAE-2D pretraining leaves the temporal attention unused: DDP must cope; rank 0 alone writes."""
    out, metrics, resume = tmp_path / "g1.pt", tmp_path / "g1.json", tmp_path / "resume"
    command = [sys.executable, "-m", "whatnext.runtime.launch", "--nproc", "2", "--",
               sys.executable, "-m", "whatnext.ssl.pretrain_mae2d", "--data", str(tiny_data_dir), "--arch", "mae2d_vit_tiny",
               "--img-size", "32", "--splits", "val", "--out", str(out), "--metrics", str(metrics), "--epochs", "2",
               "--batch-size", "16", "--lr", "2e-3", "--seed", "1", "--threads", "1", "--resume-dir", str(resume)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    stopped = subprocess.run(command, env=env | {STOP_AFTER_STEPS_ENV: "3"}, capture_output=True, text=True, timeout=600)
    assert stopped.returncode == 75, stopped.stderr[-3000:]
    assert not out.exists() and (resume / "trainer_state.pt").is_file()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 of 2" in done.stderr
    assert len(re.findall(r"generation 1 of mae2d_vit_tiny.* done", done.stderr)) == 1  # rank 0 only
    ckpt = load_checkpoint(out, expected_kind="encoder")
    report = json.loads(metrics.read_text())
    assert report["steps"] == 8 and len(report["epochs"]) == 2 and ckpt["meta"]["final_loss"] == report["final_loss"]
    assert not resume.exists()
