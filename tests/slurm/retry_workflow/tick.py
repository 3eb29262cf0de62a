"""The retry workflow's time-limit job: a real whatnext Trainer (the training CLIs' flags, deadline logic,
exit 75 and resume) over --steps steps of one clip whose loss sleeps 1 s, so it uses almost no CPU."""

import time
from pathlib import Path

import click
import torch
from torch.utils.data import TensorDataset

from whatnext.runtime.atomic import save_torch
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.trainer import Trainer


def slow_loss(model, batch):
    time.sleep(1.0)
    return model(batch[0]).pow(2).mean()


@click.command()
@click.option("--steps", type=int, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@training_options(max_epochs=1, batch_size=1, device="cpu")
def main(steps: int, out: Path, train) -> None:
    torch.manual_seed(train.seed)
    trainer = Trainer(torch.nn.Linear(1, 1), TensorDataset(torch.ones(steps, 1)), slow_loss, train, fingerprint={"toy": "tick"})
    trainer.resume_if_possible()
    trainer.fit()
    save_torch(trainer.model.state_dict(), out)
    trainer.clear_resume_state()


if __name__ == "__main__":
    main()
