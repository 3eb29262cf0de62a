"""Seeding for reproducible CPU runs."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, make torch deterministic, and return a seeded generator.

    The returned generator is the one to hand to DataLoaders and samplers so that
    data order depends on ``seed`` alone.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
