"""The workflow passes ``snakemake --lint`` and ``snakefmt --check`` (as CI checks)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]


def test_snakefmt_leaves_every_snakefile_unchanged():
    if shutil.which("snakefmt") is None:
        pytest.skip("snakefmt not installed (pip install -e .[test])")
    result = subprocess.run(["snakefmt", "--check", *map(str, SNAKE_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_snakemake_lint_reports_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(REPO / "configs" / "smoke.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr
