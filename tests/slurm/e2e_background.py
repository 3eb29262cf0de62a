"""The real-Slurm e2e (.ci/slurm_e2e.sh) started in the background as soon as pytest has collected it.

Most of the e2e's 10 minutes are Slurm polling and jobs waiting for one another, and pytest runs the
other tests on one core: started at collection, the e2e overlaps the rest of the suite, and
tests/slurm/test_real_cluster_e2e.py only waits for it and reads its output.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E_TEST = "test_real_cluster_e2e.py::test_smoke_graph_through_real_slurm_passes_every_record_check"

_running: dict[str, object] = {}


def start() -> None:
    """Start .ci/slurm_e2e.sh once, its stdout and stderr into a temporary file."""
    if "process" in _running:
        return
    log = tempfile.NamedTemporaryFile("w+", prefix="slurm-e2e-", suffix=".log", delete=False)
    _running["log"] = Path(log.name)
    _running["process"] = subprocess.Popen(["bash", ".ci/slurm_e2e.sh"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    log.close()


def wait(timeout_s: float) -> tuple[int, str]:
    """Exit code and output of the e2e (started now if it was not yet)."""
    start()
    process: subprocess.Popen = _running["process"]
    try:
        rc = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.terminate()  # local_slurm.sh's trap cancels the jobs and stops the daemons
        rc = process.wait(timeout=120)
    return rc, _running["log"].read_text(errors="replace")
