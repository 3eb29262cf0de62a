"""The smoke graph through a real single-node Slurm (issue 7), run where it is allowed to install one.

It installs Debian's slurm and munge, starts the daemons and stops them again (``.ci/slurm_e2e.sh``),
so it runs only as root on a Debian machine and only when asked: in CI (``CI=true``) or with
``WHATNEXT_SLURM_E2E=1``. Where it runs, it also checks the smoke graph's outputs, and the local smoke
run (tests/workflow/test_smoke_run.py) is skipped. It starts in the background when pytest has collected
this test (tests/slurm/conftest.py, e2e_background.py), so it overlaps the rest of the suite.
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(Path(__file__).resolve().parent)]

from smoke_checks import REAL_SLURM_E2E  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SLURM_E2E, reason="real-Slurm e2e: set WHATNEXT_SLURM_E2E=1 (root, Debian) or CI=true")
def test_smoke_graph_through_real_slurm_passes_every_record_check():
    import e2e_background

    returncode, output = e2e_background.wait(timeout_s=2400)
    print(output[-25000:])
    closing = [line for line in output.splitlines() if line.startswith("slurm_e2e:")]
    assert returncode == 0, f"slurm e2e exited {returncode}: {closing}"
    assert closing and closing[-1].endswith(" 0 failed"), closing
