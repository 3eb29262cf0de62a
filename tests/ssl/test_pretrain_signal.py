"""A real pretraining process stopped by SIGTERM checkpoints and exits 75 (slow: spawns Python, ~10 s)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from whatnext.runtime.trainer import EXIT_INCOMPLETE, STATE_FILE


@pytest.mark.slow
def test_sigterm_during_pretraining_checkpoints_and_exits_75(tiny_data_dir, tmp_path):
    log = tmp_path / "run.log"
    cmd = [sys.executable, "-m", "whatnext.ssl.pretrain_mae2d", "--data", str(tiny_data_dir), "--arch", "mae2d_vit_tiny",
           "--img-size", "32", "--splits", "val", "--out", str(tmp_path / "e.pt"), "--metrics", str(tmp_path / "m.json"),
           "--epochs", "200", "--batch-size", "16", "--threads", "1", "--resume-dir", str(tmp_path / "resume"),
           "--time-budget-min", "600", "--log", str(log)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (log.exists() and "must stop by" in log.read_text()):  # logged when training starts
            assert process.poll() is None and time.time() < deadline, "training never started"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == EXIT_INCOMPLETE
    finally:
        process.kill()
    state = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)
    assert 0 <= state["step"] < 200 * 4
    assert "received SIGTERM" in log.read_text() and not (tmp_path / "e.pt").exists()
