"""The smoke graph through a real single-node Slurm (issue 7), run where it is allowed to install one.

It installs Debian's slurm and munge, starts the daemons and stops them again (``.ci/slurm_e2e.sh``),
so it runs only as root on a Debian machine and only when asked: in CI (``CI=true``) or with
``WHATNEXT_SLURM_E2E=1``. Where it runs, it also checks the smoke graph's outputs, and the local smoke
run (tests/workflow/test_smoke_run.py) is skipped.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from smoke_checks import REAL_SLURM_E2E  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SLURM_E2E, reason="real-Slurm e2e: set WHATNEXT_SLURM_E2E=1 (root, Debian) or CI=true")
def test_smoke_graph_through_real_slurm_passes_every_record_check():
    result = subprocess.run(["bash", ".ci/slurm_e2e.sh"], cwd=REPO, capture_output=True, text=True, timeout=2400)
    print(result.stdout[-20000:])
    print(result.stderr[-5000:])
    closing = [line for line in result.stdout.splitlines() if line.startswith("slurm_e2e:")]
    assert result.returncode == 0, f"slurm e2e exited {result.returncode}: {closing}"
    assert closing and closing[-1].endswith(" 0 failed"), closing
