"""The training flags every training CLI shares, as one click decorator.

    @click.command()
    @click.option("--data", ...)
    @training_options(max_epochs=100, lr=1.5e-4, warmup_epochs=5)   # per-CLI defaults
    def main(data, train: TrainOptions): ...

The decorated function receives the flags as one ``train: TrainOptions``. The
decorator also applies ``--threads``, sets up logging (``--log``), records how the run ended in
``--outcome FILE`` for the workflow's retries (:mod:`whatnext.runtime.outcome`) and maps the runtime's
outcomes to exit codes: :class:`~whatnext.runtime.trainer.TrainingIncomplete` -> 75 (state saved,
rerun to resume); an unusable resume state or checkpoint -> :class:`BadInput` naming the
file (exit 2, like bad flags).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from pathlib import Path

import click
import torch

from whatnext.runtime.checkpoint import CheckpointError
from whatnext.runtime.deadline import parse_deadline
from whatnext.runtime.errors import BadInput
from whatnext.runtime.logging_setup import cli_logging
from whatnext.runtime.outcome import recorded
from whatnext.runtime.precision import compile_option, precision_option
from whatnext.runtime.resume_state import ResumeStateError
from whatnext.runtime.train_options import TrainOptions
from whatnext.runtime.trainer import EXIT_INCOMPLETE, TrainingIncomplete

log = logging.getLogger(__name__)


def _check_deadline(ctx, param, value):
    if value is not None:
        try:
            parse_deadline(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def check_device(ctx, param, value):
    """click callback: ``value`` must be ``auto`` or a torch device name."""
    if value != "auto":
        try:
            torch.device(value)
        except RuntimeError:
            raise click.BadParameter(f"{value!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    return value


def _option_specs(defaults: dict) -> list:
    d = {f.name: f.default for f in dataclasses.fields(TrainOptions)} | defaults
    positive = click.IntRange(min=1)
    non_negative = click.FloatRange(min=0)
    return [
        click.option("--seed", type=click.IntRange(min=0), default=d["seed"], show_default=True, help="Seed of weights, data order, augmentation and masking."),
        click.option("--max-epochs", "--epochs", "max_epochs", type=positive, default=d["max_epochs"], show_default=True,
                     help="Most passes over the data (--epochs: the same flag). Without a stop score (SSL) the run does all of them."),
        click.option("--min-epochs", type=positive, default=d["min_epochs"], show_default=True, help="No stop by progress before this many epochs (--max-epochs still ends the run)."),
        click.option("--patience", type=positive, default=d["patience"],
                     help="Stop after this many epochs without a better stop score (finetuning: the stop split carved from the training clips) [default: none, run --max-epochs; the best weights are kept either way]."),
        click.option("--batch-size", type=positive, default=d["batch_size"], show_default=True, help="Clips per optimiser step."),
        click.option("--micro-batch", type=click.IntRange(min=0), default=d["micro_batch"], show_default=True,
                     help="Most clips per forward/backward pass on each process: a step accumulates the gradients of ceil(batch/micro) "
                          "passes, each loss scaled by its share, so the step is the batch's (0: the whole batch at once). "
                          "The workflow halves it on the retry after a CUDA out-of-memory error."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=d["lr"], show_default=True, help="Peak learning rate (AdamW), reached after the warmup."),
        click.option("--weight-decay", type=non_negative, default=d["weight_decay"], show_default=True, help="AdamW weight decay (not on biases, norms, tokens)."),
        click.option("--warmup-epochs", type=non_negative, default=d["warmup_epochs"], show_default=True, help="Linear warmup length in epochs (fractions allowed); cosine decay after it."),
        click.option("--threads", type=positive, default=d["threads"], help="torch intra-op threads (default: torch's choice)."),
        click.option("--workers", type=click.IntRange(min=0), default=d["workers"], show_default=True, help="DataLoader worker processes (results do not depend on it)."),
        click.option("--device", default=d["device"], show_default=True, callback=check_device, help="torch device: auto (CUDA if available), cpu, cuda, cuda:1..."),
        precision_option(d["precision"]),
        compile_option(),
        click.option("--resume-dir", type=click.Path(file_okay=False, path_type=Path), default=d["resume_dir"], help="Folder for the resumable state, OUTSIDE the declared outputs; removed after success."),
        click.option("--checkpoint-every", type=positive, default=d["checkpoint_every"], show_default=True, help="Save the resumable state every N steps."),
        click.option("--deadline", type=str, default=d["deadline"], callback=_check_deadline, help="ISO 8601 time by which to checkpoint and exit 75 (no zone: local time)."),
        click.option("--time-budget-min", type=non_negative, default=d["time_budget_min"], help="Minutes of training (counted from its start, after data setup) before checkpointing and exiting 75."),
        click.option("--safety-margin-min", type=non_negative, default=d["safety_margin_min"], show_default=True, help="Minutes kept free before the deadline / budget / SLURM job end."),
        click.option("--log", type=click.Path(dir_okay=False, path_type=Path), default=d["log"], help="Also write the log to this file."),
    ]


def outcome_option():
    """``--outcome FILE``: where the run records how it ended (:mod:`whatnext.runtime.outcome`)."""
    return click.option("--outcome", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Record how this run ended (running/completed/incomplete/cuda_oom/memory_error/failed) in this JSON file, for the workflow's retries.")


def training_options(**defaults):
    """Decorator adding the shared training flags (defaults overridable by keyword) to a click command."""
    unknown = set(defaults) - {f.name for f in dataclasses.fields(TrainOptions)}
    if unknown:
        raise TypeError(f"unknown training option defaults: {sorted(unknown)}")
    names = [f.name for f in dataclasses.fields(TrainOptions)]

    def decorate(command):
        @functools.wraps(command)
        def wrapper(outcome=None, **kwargs):
            train = TrainOptions(**{name: kwargs.pop(name) for name in names})
            if train.threads:
                torch.set_num_threads(train.threads)
            with recorded(outcome) as run, cli_logging(train.log):
                try:
                    return command(train=train, **kwargs)
                except TrainingIncomplete as stop:
                    run.note(stop.reason)
                    log.warning("incomplete: %s; exit %d, rerun the same command to resume", stop, EXIT_INCOMPLETE)
                    sys.exit(EXIT_INCOMPLETE)
                except (ResumeStateError, CheckpointError) as err:
                    raise BadInput(str(err)) from None

        for option in reversed([*_option_specs(defaults), outcome_option()]):
            wrapper = option(wrapper)
        return wrapper

    return decorate
