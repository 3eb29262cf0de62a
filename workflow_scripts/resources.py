"""Resources of the GPU rules (training and inference), from the config's ``resources`` section.

``gpu_job_resources(rule_name, config) -> {"gpu": int, "mem_mb": int}``, used by the rules through
workflow_scripts.time_limits (which computes their deadline-aware ``runtime``), and
``memory_mb(rule_name, config, memory_retries)``, the ``mem_mb`` of a retry after ``memory_retries``
earlier attempts that ran out of host memory (workflow_scripts/retry_policy.py):
``min(mem_mb x mem_growth ** memory_retries, max_mem_mb)``. Partitions are never chosen here: profiles
set them. ``resources`` keys read here: ``gpu`` (GPUs per job, 0 on CPU), ``mem_mb``, ``mem_growth`` (2),
``max_mem_mb`` (the node's memory; none: no cap).
"""

from __future__ import annotations

import math

DEFAULTS = {"gpu": 0, "mem_mb": 4000, "mem_growth": 2, "max_mem_mb": None}


def _section(config: dict) -> dict:
    return {**DEFAULTS, **(config.get("resources") or {})}


def gpu_job_resources(rule_name: str, config: dict) -> dict:
    """GPUs and memory (MB) of one job of ``rule_name`` at its first attempt."""
    section = _section(config)
    return {"gpu": int(section["gpu"]), "mem_mb": int(section["mem_mb"])}


def memory_mb(rule_name: str, config: dict, memory_retries: int = 0) -> int:
    """``mem_mb`` of a job of ``rule_name`` after ``memory_retries`` attempts that ran out of memory."""
    section = _section(config)
    grown = math.ceil(gpu_job_resources(rule_name, config)["mem_mb"] * float(section["mem_growth"]) ** memory_retries)
    cap = section["max_mem_mb"]
    return grown if cap in (None, "", "None") else min(grown, int(cap))
