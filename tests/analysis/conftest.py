"""The analysis tests reuse the ensemble tests' hand-made member pools."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("ensemble_test_pools", Path(__file__).resolve().parents[1] / "ensemble" / "conftest.py")
_pools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pools)

specialist_pool = _pools.specialist_pool
one_thread = _pools.one_thread
