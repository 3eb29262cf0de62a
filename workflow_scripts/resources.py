"""Resources of the GPU rules (training and inference), from the config's ``resources`` section.

``gpu_job_resources(rule_name, config) -> {"gpu": int, "mem_mb": int}``, used by the rules through
workflow_scripts.time_limits (which computes their deadline-aware ``runtime``). Partitions are never
chosen here: profiles set them. ``resources`` keys read here: ``gpu`` (GPUs per job, 0 on CPU), ``mem_mb``.
"""

from __future__ import annotations

DEFAULTS = {"gpu": 0, "mem_mb": 4000}


def _section(config: dict) -> dict:
    return {**DEFAULTS, **config.get("resources", {})}


def gpu_job_resources(rule_name: str, config: dict) -> dict:
    """GPUs and memory (MB) of one job of ``rule_name``."""
    section = _section(config)
    return {"gpu": int(section["gpu"]), "mem_mb": int(section["mem_mb"])}
