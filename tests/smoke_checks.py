"""What a finished smoke graph (configs/smoke.yaml) must hold, and whether CI runs it through real Slurm.

Shared by the local smoke run (tests/workflow/test_smoke_run.py) and the real-Slurm e2e
(tests/slurm/e2e_slurm.py), so that CI trains the smoke graph once: where the real-Slurm e2e runs,
the local run is skipped and the e2e checks these outputs instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

# The real-Slurm e2e installs Debian's slurm: only as root on Debian, and only when asked.
REAL_SLURM_ASKED = os.environ.get("CI") == "true" or os.environ.get("WHATNEXT_SLURM_E2E") == "1"
REAL_SLURM_CAN = os.geteuid() == 0 and shutil.which("apt-get") is not None
REAL_SLURM_E2E = REAL_SLURM_ASKED and REAL_SLURM_CAN
SMOKE_MEMBERS = 5  # members the stacker of configs/smoke.yaml stacks


def smoke_output_problems(results: Path) -> list[str]:
    """What is wrong with a finished smoke graph's outputs under ``results`` (empty: nothing):
    the submission names every test clip once, the report counts the smoke config's members."""
    problems = []
    test_ids = pd.read_csv(results / "data" / "test.csv", dtype=str)["video_id"]
    submission = pd.read_csv(results / "submission.csv", dtype=str)
    if sorted(submission["video_name"]) != sorted("video_" + test_ids):
        problems.append(f"{results / 'submission.csv'}: its clips are not the {len(test_ids)} test clips")
    members = json.loads((results / "report" / "summary.json").read_text())["num_members"]
    if members != SMOKE_MEMBERS:
        problems.append(f"report summary counts {members} members, the smoke config stacks {SMOKE_MEMBERS}")
    return problems
