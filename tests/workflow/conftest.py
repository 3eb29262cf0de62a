"""Workflow tests: the repo root on sys.path (for workflow_scripts) and the paper config."""

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


@pytest.fixture
def paper_config() -> dict:
    """configs/paper.yaml, freshly loaded per test."""
    return yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
