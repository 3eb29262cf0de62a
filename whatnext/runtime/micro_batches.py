"""Splitting one optimiser step's batch into micro-batches, for gradient accumulation (``--micro-batch``).

A batch is what a ``collate_fn`` makes: a tensor, or a tuple / list / dict of fields, each a tensor (split
along dim 0), a sequence of per-clip values (clip ids, frame sizes; split like a list) or None (kept as is
in every micro-batch). :func:`micro_batches` cuts it into consecutive slices of at most ``size`` clips;
the last one is shorter when ``size`` does not divide the batch. :func:`batch_length` is the batch's clip
count, ``len`` of its first field, as the trainer counts throughput.
"""

from __future__ import annotations

from typing import Sequence

import torch


def batch_length(batch) -> int:
    """Clips in ``batch``: its length (a tensor) or its first field's (tuple, list, dict)."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(first)


def _field_slice(field, start: int, stop: int, length: int, name: str):
    if field is None:
        return None
    if isinstance(field, (torch.Tensor, Sequence)) and not isinstance(field, (str, bytes)) and len(field) == length:
        return field[start:stop]
    size = len(field) if hasattr(field, "__len__") else "no"
    raise ValueError(f"batch field {name} ({type(field).__name__} of {size} items) is not one value per clip of a "
                     f"{length}-clip batch: cannot split it into micro-batches")


def _slice(batch, start: int, stop: int, length: int):
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    if isinstance(batch, dict):
        return {key: _field_slice(value, start, stop, length, repr(key)) for key, value in batch.items()}
    return type(batch)(_field_slice(value, start, stop, length, str(i)) for i, value in enumerate(batch))


def micro_batches(batch, size: int) -> list[tuple[object, int]]:
    """``[(micro-batch, clips in it), ...]``: ``batch`` cut into consecutive slices of ``size`` clips (the
    last may be shorter); ``[(batch, n)]`` itself, uncut, when ``size`` >= its ``n`` clips."""
    if size < 1:
        raise ValueError(f"micro-batch size must be >= 1, got {size}")
    length = batch_length(batch)
    if size >= length:
        return [(batch, length)]
    return [(_slice(batch, start, min(start + size, length), length), min(size, length - start))
            for start in range(0, length, size)]
