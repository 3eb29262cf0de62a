"""Shared helpers of the workflow tests: the repo root on sys.path (workflow_scripts) and config loading."""

import copy
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


@pytest.fixture
def default_config() -> dict:
    """The embedded default config (config.yaml), a fresh copy per test."""
    return copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))


@pytest.fixture
def paper_config() -> dict:
    return copy.deepcopy(yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()))
