"""The smoke graph (configs/smoke.yaml) end to end with the real stage CLIs (a few minutes on 2 cores)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_graph_runs_end_to_end_and_writes_a_complete_submission(tmp_path):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(REPO / "configs" / "smoke.yaml"), "--profile", str(REPO / "profiles" / "local")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results" / "smoke"
    test_ids = pd.read_csv(results / "data" / "test.csv", dtype=str)["video_id"]
    submission = pd.read_csv(results / "submission.csv", dtype=str)
    assert sorted(submission["video_name"]) == sorted("video_" + test_ids)
    summary = json.loads((results / "report" / "summary.json").read_text())
    assert summary["num_members"] == 5
    again = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr
