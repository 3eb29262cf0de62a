"""The smoke graph (configs/smoke.yaml) end to end with the real stage CLIs (a few minutes on 2 cores).

Skipped where the real-Slurm e2e runs (CI): it trains the same graph through sbatch and checks the
same outputs (tests/smoke_checks.py), so CI trains the smoke graph once.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from smoke_checks import REAL_SLURM_E2E, smoke_output_problems  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(REAL_SLURM_E2E, reason="the real-Slurm e2e runs the smoke graph and checks these outputs")
def test_smoke_graph_runs_end_to_end_and_writes_a_complete_submission(tmp_path):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(REPO / "configs" / "smoke.yaml"), "--profile", str(REPO / "profiles" / "local")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    assert smoke_output_problems(tmp_path / "results" / "smoke") == []
    again = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr
