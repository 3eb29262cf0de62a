"""Optimiser parameter groups for finetuning: layer-wise learning-rate decay (BEiT / MAE recipe).

With L encoder blocks and decay d, a parameter at depth k gets ``lr = base_lr * d ** (L + 1 - k)``:
k = 0 for the encoder's patch/position embedding and anything else in the encoder outside a
block, k = i + 1 for block i (and for the temporal adapter attached after block i, named
``temporal.<i>``), k = L + 1 for everything outside the encoder (temporal head, auxiliary heads).
The head trains at the full rate, the embedding at ``d ** (L + 1)`` of it. Weight decay follows
the trainer's rule (none on biases, norms and tokens).
"""

from __future__ import annotations

import re

import torch.nn as nn

from whatnext.runtime.optim_schedule import exempt_from_weight_decay

BLOCK_INDEX = re.compile(r"(?:^|\.)(blocks|temporal)\.(\d+)\.")


def parameter_depth(name: str, num_blocks: int, encoder_prefix: str) -> int:
    """Depth k of parameter ``name`` (see the module docstring)."""
    if not name.startswith(encoder_prefix):
        return num_blocks + 1
    found = BLOCK_INDEX.search(name[len(encoder_prefix):])
    return 0 if found is None else int(found.group(2)) + 1


def count_blocks(model: nn.Module, encoder_prefix: str) -> int:
    """Number of distinct ``blocks.<i>`` among the encoder's parameters (0 for an encoder without blocks)."""
    indices = set()
    for name, _ in model.named_parameters():
        found = BLOCK_INDEX.search(name[len(encoder_prefix):]) if name.startswith(encoder_prefix) else None
        if found is not None and found.group(1) == "blocks":
            indices.add(int(found.group(2)))
    return len(indices)


def layer_decay_groups(model: nn.Module, base_lr: float, weight_decay: float, layer_decay: float,
                       encoder_prefix: str = "encoder.") -> list[dict]:
    """AdamW groups ``{"params", "lr", "weight_decay"}``, one per (depth, decayed or not); frozen parameters left out.

    Groups run from the top (the head, at ``base_lr``: the rate the trainer's metrics report) down to
    the embedding. ``layer_decay = 1`` gives every parameter ``base_lr``.
    """
    num_blocks = count_blocks(model, encoder_prefix)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = parameter_depth(name, num_blocks, encoder_prefix)
        exempt = exempt_from_weight_decay(name, param)
        group = groups.setdefault(
            (depth, exempt),
            {"params": [], "lr": base_lr * layer_decay ** (num_blocks + 1 - depth), "weight_decay": 0.0 if exempt else weight_decay},
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups, reverse=True)]
