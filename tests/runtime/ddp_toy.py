"""A toy data-parallel run for tests/runtime/test_distributed.py (started by whatnext.runtime.launch).

Fits y = x . (1, -2, 3) + 0.5 on 48 fixed points with the shared Trainer (global batch 8, full batches
only, 3 epochs, no randomness in the step); rank 0 writes ``--out`` = {"weights", "losses", "world", "syncs"}
(syncs: the gradient all-reduces rank 0 made, counted by a DDP comm hook; 0 for one process).
``--step-sleep`` slows every step and ``--started`` names a file rank 0 touches after its third step
(for the tests that stop a run from outside).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch
from torch.utils.data import Dataset

from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from whatnext.runtime.cli_options import training_options
from whatnext.runtime.distributed import close_process_group, current_ranks, init_process_group
from whatnext.runtime.trainer import Trainer


class Points(Dataset):
    def __len__(self):
        return 48

    def __getitem__(self, i):
        x = torch.tensor([i / 48, (i % 5) / 5, ((7 * i) % 11) / 11])
        return x, (x @ torch.tensor([1.0, -2.0, 3.0]) + 0.5).unsqueeze(0)


@click.command()
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--step-sleep", type=float, default=0.0)
@click.option("--started", type=click.Path(path_type=Path), default=None)
@training_options(seed=5, max_epochs=3, batch_size=8, lr=0.05, warmup_epochs=0.5, threads=1)
def main(out, step_sleep, started, train):
    init_process_group(train.device)
    steps = []

    def loss_fn(model, batch):
        x, y = batch
        if step_sleep:
            time.sleep(step_sleep)
        steps.append(1)
        if started is not None and len(steps) == 3 and current_ranks().main:
            started.touch()
        return torch.nn.functional.mse_loss(model(x), y)

    torch.manual_seed(0)
    trainer = Trainer(torch.nn.Linear(3, 1), Points(), loss_fn, train, drop_last=True)
    syncs = []
    if trainer.ranks.distributed:  # count the gradient all-reduces (one bucket: one a sync)
        trainer.step_model.register_comm_hook(None, lambda state, bucket: syncs.append(1) or allreduce_hook(state, bucket))
    trainer.resume_if_possible()
    result = trainer.fit()
    if trainer.ranks.main:
        torch.save({"weights": trainer.model.state_dict(), "losses": [r["loss"] for r in result.history],
                    "world": trainer.ranks.world, "syncs": len(syncs)}, out)
        trainer.clear_resume_state()
    close_process_group()


if __name__ == "__main__":
    sys.exit(main())
