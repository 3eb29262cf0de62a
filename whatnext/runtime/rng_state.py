"""Random-number state of a training run: seeds derived from (seed, parts), and the global RNGs saved and restored.

The global RNGs (torch CPU and CUDA, NumPy, Python) are what a step may draw from (masking, dropout); the
resume state holds them as :func:`capture_rng_state` returns them, tensors and plain numbers only, so they
load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed that is a pure function of ``(seed, *parts)`` (all non-negative ints)."""
    words = np.random.SeedSequence([seed, *parts]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def capture_rng_state() -> dict:
    """The global RNGs' states: ``cuda`` (list of tensors, empty without CUDA), ``torch`` (uint8 tensor),
    ``numpy`` (the legacy generator's tuple as named fields) and ``python`` (``random.getstate()``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }


def restore_rng_state(state: dict) -> None:
    """Set the global RNGs to a :func:`capture_rng_state` result (CUDA only where it was saved and is present)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
