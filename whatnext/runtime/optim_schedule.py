"""The trainer's optimiser groups (AdamW, no decay on 1-D parameters and tokens) and its learning-rate schedule."""

from __future__ import annotations

import math
from typing import Callable

import torch


NO_DECAY_NAMES = ("pos_embed", "cls_token", "mask_token")


def exempt_from_weight_decay(name: str, param: torch.nn.Parameter) -> bool:
    """True for biases, norm weights and other 1-D parameters, and position/class/mask tokens."""
    return param.ndim <= 1 or name.split(".")[-1] in NO_DECAY_NAMES


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: ``weight_decay`` for weight matrices/kernels, none where :func:`exempt_from_weight_decay`."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if exempt_from_weight_decay(name, param) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """LR factor at step s: linear (s+1)/(warmup+1) during warmup, then cosine from 1 to ``min_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
