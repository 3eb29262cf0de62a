"""Resources of the GPU rules (training and inference), from the config's ``resources`` section.

The interface the rules use (through rules/common.smk), shared with workflow_scripts.time_limits:
``gpu_job_resources(rule_name, config) -> {"gpu": int, "mem_mb": int}`` and
``runtime_minutes(rule_name, wildcards, attempt, config) -> int``. Partitions are never chosen here:
profiles set them. ``resources`` keys: ``gpu`` (GPUs per job, 0 on CPU), ``mem_mb``, ``runtime_min``
(estimated minutes per job) and ``runtime_min_by_rule`` (per-rule estimates); a retry (attempt k)
gets k times the estimate.
"""

from __future__ import annotations

import math

DEFAULTS = {"gpu": 0, "mem_mb": 4000, "runtime_min": 60}


def _section(config: dict) -> dict:
    return {**DEFAULTS, **config.get("resources", {})}


def gpu_job_resources(rule_name: str, config: dict) -> dict:
    """GPUs and memory (MB) of one job of ``rule_name``."""
    section = _section(config)
    return {"gpu": int(section["gpu"]), "mem_mb": int(section["mem_mb"])}


def runtime_minutes(rule_name: str, wildcards, attempt: int, config: dict) -> int:
    """Time limit in whole minutes of one job of ``rule_name`` at retry ``attempt`` (1-based)."""
    section = _section(config)
    estimate = section.get("runtime_min_by_rule", {}).get(rule_name, section["runtime_min"])
    return max(1, math.ceil(estimate * attempt))
