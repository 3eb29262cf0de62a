"""The data order of a training run: which clips each step sees, and under which seed each clip is drawn.

The clip order of epoch ``e`` is a pure function of ``(seed, e)`` (:func:`epoch_order`); a run resumed
mid-epoch skips exactly the batches already consumed (:class:`StepBatches`); each clip's augmentation draws
from torch's RNG seeded by ``(seed, epoch, index)`` (:class:`EpochSeededItems`), so it does not depend on
workers or on resuming, and data loading never touches the global RNG.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from whatnext.runtime.distributed import rank_shard
from whatnext.runtime.rng_state import derive_seed


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of ``epoch``: a permutation of range(num_items) fixed by (seed, epoch)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, epoch))
    return torch.randperm(num_items, generator=generator).tolist()


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int, drop_last: bool) -> list[list[int]]:
    """Item indices of each batch of ``epoch``, in order."""
    order = epoch_order(num_items, seed, epoch)
    batches = [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


class EpochSeededItems(Dataset):
    """Wraps a dataset so item ``(epoch, i)`` is ``dataset[i]`` drawn under torch seed (seed, epoch, i).

    Random transforms inside ``dataset`` thus give the same result whatever the worker,
    the batch position or a resume, and the caller's global RNG is left untouched.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also queue a CUDA reseed (with a stack
            # trace, about 0.5 ms an item) that fork_rng(devices=[]) does not undo.
            torch.default_generator.manual_seed(derive_seed(self.seed, epoch, index))
            return self.dataset[index]


class StepBatches:
    """Batch sampler of a whole run from ``start_step`` on: each step's item keys ``(epoch, index)``, built
    lazily epoch by epoch (one loader serves every epoch, so its workers persist and prefetch across
    epoch ends). With several ranks, each yields its :func:`~whatnext.runtime.distributed.rank_shard`."""

    def __init__(self, num_items: int, batch_size: int, seed: int, drop_last: bool, start_step: int,
                 total_steps: int, steps_per_epoch: int, ranks):
        self.args = (num_items, batch_size, seed, drop_last)
        self.start_step, self.total_steps, self.steps_per_epoch, self.ranks = start_step, total_steps, steps_per_epoch, ranks

    def __len__(self) -> int:
        return self.total_steps - self.start_step

    def __iter__(self):
        num_items, batch_size, seed, drop_last = self.args
        epoch, skip = divmod(self.start_step, self.steps_per_epoch)
        step = self.start_step
        while step < self.total_steps:
            for batch in epoch_batches(num_items, batch_size, seed, epoch, drop_last)[skip:]:
                yield [(epoch, i) for i in (rank_shard(batch, self.ranks) if self.ranks.distributed else batch)]
                step += 1
            epoch, skip = epoch + 1, 0
