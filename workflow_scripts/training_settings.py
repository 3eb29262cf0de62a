"""Training settings of one job: layered config sections merged, then rendered as CLI flags.

A training job's settings come from ``config["train"]`` (defaults for every job), then its family's
``train`` section, then its own (an SSL generation, a variant or a member override). Keys:
``max_epochs``, ``min_epochs``, ``patience`` (stopping by progress; SSL runs have no stop score and do
``max_epochs``), ``batch_size``, ``lr``, ``checkpoint_every`` and ``options`` (extra flags of the stage CLI,
``{"mask-ratio": 0.75}`` -> ``--mask-ratio 0.75``; ``true`` -> bare flag; a list repeats the flag).
"""

from __future__ import annotations

import shlex
import zlib

NUMERIC_FLAGS = {"max_epochs": "--max-epochs", "min_epochs": "--min-epochs", "patience": "--patience", "batch_size": "--batch-size", "lr": "--lr", "checkpoint_every": "--checkpoint-every"}


def merge_settings(*layers: dict | None) -> dict:
    """Later layers win key by key; ``options`` dicts are merged rather than replaced."""
    merged: dict = {"options": {}}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "options":
                merged["options"] = {**merged["options"], **(value or {})}
            else:
                merged[key] = value
    return merged


def render_flags(settings: dict) -> str:
    """The CLI flags of merged settings, in a fixed order (so unchanged settings give the same string)."""
    parts: list[str] = []
    for key, flag in NUMERIC_FLAGS.items():
        if settings.get(key) is not None:
            parts += [flag, str(settings[key])]
    for name, value in sorted(settings.get("options", {}).items()):
        flag = f"--{name}"
        if value is True:
            parts.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            for item in value:
                parts += [flag, str(item)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def job_seed(base_seed: int, job_name: str) -> int:
    """A seed per job that depends only on the base seed and the job's name (stable across configs)."""
    return (int(base_seed) + zlib.crc32(job_name.encode())) % 2**31
