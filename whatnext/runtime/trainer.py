"""The training loop shared by every training CLI: seeded, resumable, deadline-aware.

A :class:`Trainer` owns the optimiser (AdamW), the per-step warmup + cosine schedule
(``LambdaLR``), the data order and the resume state. The caller owns the model and
says what one step's loss is::

    trainer = Trainer(model, dataset, loss_fn, options, fingerprint={"arch": arch, ...})
    trainer.resume_if_possible()          # no-op on a fresh run
    result = trainer.fit()                # raises TrainingIncomplete at a deadline/signal
    save_checkpoint(out, ...)             # final outputs, atomically, only now
    write_metrics(metrics, result.history, ...)
    trainer.clear_resume_state()

This module is the loop; its parts live beside it: the options (:mod:`whatnext.runtime.train_options`),
the data order and batching (:mod:`whatnext.runtime.batch_order`), the optimiser groups and schedule
(:mod:`whatnext.runtime.optim_schedule`), the RNG state (:mod:`whatnext.runtime.rng_state`) and the
resume state's file and fingerprint check (:mod:`whatnext.runtime.resume_state`). Their names are
importable from here too.

Determinism and exact resume:
- the clip order of epoch ``e`` is a pure function of ``(seed, e)`` (:func:`epoch_order`);
  a run resumed mid-epoch skips exactly the batches already consumed;
- each clip's augmentation draws from torch's RNG seeded by ``(seed, epoch, index)``
  (:class:`EpochSeededItems`), so it does not depend on workers or on resuming, and
  data loading never touches the global RNG;
- the global RNGs (torch, NumPy, Python), which the step itself may use (masking,
  dropout), are saved with the model, optimiser, scheduler, step and loss history
  (:func:`~whatnext.runtime.rng_state.capture_rng_state`).
A rerun with the same arguments therefore ends with bitwise-identical weights.

Several ranks (started by :mod:`whatnext.runtime.launch`, see :mod:`whatnext.runtime.distributed`):
``batch_size`` is the global batch, each rank steps a ``DistributedDataParallel`` copy on its shard of
the 1-process data order, the step's global-RNG draws come from a stream fixed by (seed, step, rank),
the ranks agree on every stop, and rank 0 alone writes the resume state.

Micro-batches (``--micro-batch m``, :mod:`whatnext.runtime.micro_batches`): each process cuts its batch of
``b`` clips into ceil(b / m) consecutive micro-batches (the last shorter when m does not divide b), runs
forward and backward on each in turn with its loss scaled by its share of the batch (clips / b), and steps
the optimiser once: the gradient is the whole batch's mean-loss gradient, so the effective batch, the
schedule, the data order and the resume state do not depend on ``m`` (a run may resume at another). Under
fp16 each micro-batch's backward goes through the gradient scaler, and the unscale, clip and step come once
per step; with several ranks all but the last micro-batch run under ``no_sync()``, so the gradients are
all-reduced once. Equal to the whole batch up to float rounding for a loss that is a mean over clips and
draws nothing; the same in expectation otherwise: the step's random draws (augmentation, masks) are taken
per micro-batch, and batch statistics are those of each micro-batch: BatchNorm (its normalisation, and its
running statistics, updated once per micro-batch), JEPA's variance-covariance terms, the class-balanced
cross-entropy's weight normalisation and the motion weights' batch mean, as each DDP rank's shard already
has them. A CUDA out-of-memory error in training is raised as :class:`CudaOutOfMemory`, which names the
micro-batch the run was at (the outcome file records it; the workflow's retry halves it).

Stopping by progress: with a ``stop_score`` (a held-out score of the model, from a split the caller
carved from its training clips), each epoch ends with an :class:`~whatnext.runtime.early_stopping.EarlyStopping`
update; training ends after ``patience`` epochs without improvement (not before ``min_epochs``) or at
``max_epochs``, and the best weights are restored. The stopping state, best weights included, is part of
the resume state. The schedule's cosine spans ``max_epochs``.

Stopping at a deadline: before each step, if a stop signal arrived (SIGTERM/SIGUSR1/SIGURG), or the
next step plus a checkpoint write would cross the deadline (:mod:`whatnext.runtime.deadline`),
or ``WHATNEXT_STOP_AFTER_STEPS=k`` steps were done in this process (test hook), the
state is saved to ``resume_dir`` and :class:`TrainingIncomplete` is raised; CLIs turn it
into exit code :data:`EXIT_INCOMPLETE` (75, EX_TEMPFAIL: "incomplete, rerun to resume").
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from whatnext.runtime.atomic import remove_temporaries, save_torch
from whatnext.runtime.batch_order import EpochSeededItems, StepBatches, epoch_batches, epoch_order
from whatnext.runtime.checkpoint import CheckpointError, load_weights_file
from whatnext.runtime.deadline import DeadlineWatch, StopSignals, resolve_stop_time
from whatnext.runtime.distributed import barrier, check_shardable, current_ranks, mean_over_ranks, rank_device, stop_together
from whatnext.runtime.early_stopping import EarlyStopping
from whatnext.runtime.metrics import EpochMeter
from whatnext.runtime.micro_batches import micro_batches
from whatnext.runtime.optim_schedule import exempt_from_weight_decay, param_groups, warmup_cosine
from whatnext.runtime.outcome import is_cuda_oom
from whatnext.runtime.precision import Acceleration
from whatnext.runtime.resume_state import STATE_FILE, STATE_FORMAT, ResumeStateError, check_state, jsonable
from whatnext.runtime.rng_state import capture_rng_state, derive_seed, restore_rng_state
from whatnext.runtime.train_options import TrainOptions

# The trainer's interface, importable from here (the parts' modules are named in the docstring above).
__all__ = [
    "CudaOutOfMemory", "EXIT_INCOMPLETE", "STATE_FILE", "STOP_AFTER_STEPS_ENV", "EpochSeededItems", "ResumeStateError",
    "StepBatches", "TrainOptions", "TrainResult", "Trainer", "TrainingIncomplete", "epoch_batches", "epoch_order",
    "exempt_from_weight_decay", "param_groups", "to_device", "warmup_cosine",
]

log = logging.getLogger(__name__)

EXIT_INCOMPLETE = 75  # EX_TEMPFAIL: state saved in --resume-dir, rerun the same command to resume
STOP_AFTER_STEPS_ENV = "WHATNEXT_STOP_AFTER_STEPS"


class CudaOutOfMemory(RuntimeError):
    """A CUDA out-of-memory error during :meth:`Trainer.fit`, at ``micro_batch`` clips per forward pass of one
    process: the resume state on disk (the last checkpoint, atomically written) is intact, and a rerun at a
    smaller ``--micro-batch`` resumes from it. Its message starts like torch's ("CUDA out of memory"), so
    :func:`whatnext.runtime.outcome.classify` records it as ``cuda_oom``, with ``micro_batch``."""

    def __init__(self, step: int, micro_batch: int, error: BaseException):
        self.step, self.micro_batch = step, micro_batch
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(f"CUDA out of memory at step {step}, micro-batch {micro_batch} clips: {first_line}")


class TrainingIncomplete(Exception):
    """Training stopped early with its state saved; rerunning the same command resumes it."""

    def __init__(self, step: int, total_steps: int, reason: str, state_path: Path | None):
        self.step, self.total_steps, self.reason, self.state_path = step, total_steps, reason, state_path
        where = f"state saved to {state_path}" if state_path else "NO --resume-dir, progress is lost"
        super().__init__(f"stopped at step {step}/{total_steps} ({reason}); {where}")


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns: per-epoch records and the last epoch's mean loss."""

    history: list[dict]
    final_loss: float
    steps: int
    stopping: dict | None = None  # EarlyStopping.summary() when a stop score was given


def to_device(batch, device: torch.device):
    """Move the tensors of a batch (nested tuples, lists, dicts) to ``device``; other items stay."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


class Trainer:
    """Trains ``model`` on ``dataset`` by minimising ``loss_fn(model, batch) -> scalar tensor``.

    Args:
        model: moved to ``options.device``; every trainable parameter it holds is optimised
            (AdamW), and its whole ``state_dict`` goes into the resume state.
        dataset: indexable; ``collate_fn`` (default: torch's) makes batches of its items.
            Batches are moved to the device (:func:`to_device`); the batch size for
            throughput is ``len(batch[0])``.
        loss_fn: one step's mean loss over the batch; may use the global torch RNG.
        options: the shared training flags.
        fingerprint: JSON-able description of everything else that decides the result
            (architecture, data, init checkpoint...); a resume state written under another
            fingerprint is refused.
        groups: optimiser parameter groups (default :func:`param_groups`); each group's
            ``lr`` (default ``options.lr``) is scaled by the schedule.
        on_epoch_end: ``f(epoch, record) -> dict | None`` called after each epoch (e.g.
            validation); returned fields are added to the epoch's metrics record.
        stop_score: ``f(model) -> dict`` of held-out numbers (``stop_loss``, ``stop_top1``) scored after each
            epoch on a split carved from the training clips; enables stopping by progress
            (:class:`~whatnext.runtime.early_stopping.EarlyStopping` with ``options.patience`` and
            ``options.min_epochs``) and the best weights are restored at the end. None: run ``max_epochs``.
        stop_monitor: ``"loss"`` or ``"top1"``, the stop score's number that decides.
        stop_chance: the stop split's top-1 of the constant majority prediction: patience counts only once
            ``stop_top1`` beats it (None: from the first epoch).
        clip_grad_norm: clip the global gradient norm to this value (None: no clipping).
        min_lr_ratio: the cosine schedule ends at ``lr * min_lr_ratio``.
        betas: AdamW betas (MAE pretraining uses (0.9, 0.95)).
        clock: unix seconds (injectable for tests).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Dataset,
        loss_fn: Callable[[torch.nn.Module, object], torch.Tensor],
        options: TrainOptions,
        *,
        fingerprint: dict | None = None,
        collate_fn: Callable | None = None,
        drop_last: bool = False,
        groups: Sequence[dict] | None = None,
        on_epoch_end: Callable[[int, dict], dict | None] | None = None,
        stop_score: Callable[[torch.nn.Module], dict] | None = None,
        stop_monitor: str = "loss",
        stop_chance: float | None = None,
        clip_grad_norm: float | None = None,
        min_lr_ratio: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        desc: str = "train",
        clock: Callable[[], float] = time.time,
    ):
        self.ranks = current_ranks()
        check_shardable(options.batch_size, drop_last, self.ranks)
        self.device = rank_device(options.device, self.ranks)
        self.accel = Acceleration(self.device, options.precision, options.compile)
        process_batch = options.batch_size // self.ranks.world  # each rank's share of the global batch
        self.micro_batch = min(options.micro_batch or process_batch, process_batch)
        self.model = self.accel.prepare(model)
        self.step_model = self._data_parallel(self.model)
        self.dataset = dataset
        self.loss_fn = loss_fn
        self.options = options
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.on_epoch_end = on_epoch_end
        self.clip_grad_norm = clip_grad_norm
        self.desc = desc
        self.clock = clock
        n = len(dataset)
        self.steps_per_epoch = len(epoch_batches(n, options.batch_size, options.seed, 0, drop_last))
        if self.steps_per_epoch == 0:
            raise ValueError(f"{n} clips make no batch of {options.batch_size} (drop_last={drop_last})")
        self.stopping = None if stop_score is None else EarlyStopping(stop_score, stop_monitor, options.patience,
                                                                      options.min_epochs, stop_chance)
        self.total_steps = options.max_epochs * self.steps_per_epoch
        self.warmup_steps = round(options.warmup_epochs * self.steps_per_epoch)
        self.fingerprint = jsonable(
            {"options": options.result_fields(), "num_items": n, "drop_last": drop_last, "min_lr_ratio": min_lr_ratio,
             "clip_grad_norm": clip_grad_norm, "betas": list(betas),
             "stop_monitor": None if stop_score is None else stop_monitor, "task": fingerprint or {}}
        )
        self.optimizer = torch.optim.AdamW(
            groups if groups is not None else param_groups(model, options.weight_decay), lr=options.lr, betas=betas,
            **self.accel.optimizer_kwargs(),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(self.warmup_steps, self.total_steps, min_lr_ratio)
        )
        self.step = 0
        self.history: list[dict] = []
        self.meter = EpochMeter()

    def _data_parallel(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the steps call: ``model`` itself, or its DistributedDataParallel wrapper with several ranks."""
        if not self.ranks.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: a step may leave parameters out (MAE-2D pretraining never runs its temporal attention)
        return DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None,
                                       find_unused_parameters=True)

    # ----------------------------------------------------------------- resume state
    @property
    def state_path(self) -> Path | None:
        """Where the resume state lives (None without ``--resume-dir``)."""
        return Path(self.options.resume_dir) / STATE_FILE if self.options.resume_dir else None

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: weights, optimiser, schedule, step, history, RNGs."""
        return {
            "format": STATE_FORMAT,
            "fingerprint": self.fingerprint,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "meter": self.meter.state_dict(),
            "rng": capture_rng_state(),
            "scaler": self.accel.state_dict(),
            "stopping": None if self.stopping is None else self.stopping.state_dict(),
        }

    def load_state_dict(self, state: dict, source: str | Path = "resume state") -> None:
        """Restore :meth:`state_dict` output; refuses a state written under another fingerprint."""
        check_state(state, self.fingerprint, source)
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.history = list(state["history"])
        self.meter = EpochMeter.from_state(state["meter"])
        restore_rng_state(state["rng"])
        self.accel.load_state_dict(state.get("scaler"))
        if self.stopping is not None:
            self.stopping.load_state_dict(state["stopping"])

    def resume_if_possible(self) -> bool:
        """Load the resume state from ``--resume-dir`` if one exists; True if resumed."""
        path = self.state_path
        if path is None or not path.is_file():
            return False
        try:
            state = load_weights_file(path, "resume state")
        except CheckpointError as err:
            raise ResumeStateError(f"{err}; delete it to start over") from None
        self.load_state_dict(state, path)
        log.info("resumed from %s at step %d/%d (epoch %d)", path, self.step, self.total_steps, self.epoch)
        return True

    def save_state(self) -> None:
        """Write the resume state atomically (no-op without ``--resume-dir``; rank 0 writes, the others wait)."""
        if self.state_path is not None and self.ranks.main:
            save_torch(self.state_dict(), self.state_path)
        barrier(self.ranks)

    def clear_resume_state(self) -> None:
        """Remove the resume state, its temporaries (a killed write's orphans) and ``--resume-dir`` if left
        empty: call after final outputs are written."""
        path = self.state_path
        if path is None or not self.ranks.main:
            return
        path.unlink(missing_ok=True)
        remove_temporaries(path)
        try:
            path.parent.rmdir()
        except OSError:
            pass

    # ----------------------------------------------------------------- training
    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to (0-based)."""
        return self.step // self.steps_per_epoch

    def _batch_iterator(self):
        """Batches of every remaining step, from one loader (see :class:`StepBatches`)."""
        opts = self.options
        keys = StepBatches(len(self.dataset), opts.batch_size, opts.seed, self.drop_last, self.step, self.total_steps,
                           self.steps_per_epoch, self.ranks)
        loader = DataLoader(
            EpochSeededItems(self.dataset, opts.seed),
            batch_sampler=keys,
            collate_fn=self.collate_fn,
            generator=torch.Generator().manual_seed(derive_seed(opts.seed, self.epoch)),  # keeps the global RNG untouched
            **self.accel.loader_kwargs(opts.workers),
        )
        return iter(loader)

    def _stop_reason(self, watch: DeadlineWatch, signals: StopSignals, steps_done: int, stop_after: int | None) -> str | None:
        if signals.received is not None:
            return f"signal {signals.received}"
        if stop_after is not None and steps_done >= stop_after:
            return f"{STOP_AFTER_STEPS_ENV}={stop_after}"
        if watch.next_step_would_cross():
            return watch.stop_reason()
        return None

    def _train_step(self, batch) -> tuple[float, int]:
        """One optimiser step on ``batch``, one micro-batch at a time (see the module docstring); returns the
        batch's mean loss (over the ranks) and the clips of the global batch."""
        if self.ranks.distributed:  # each rank's draws (masks, crops) from a stream fixed by (seed, step, rank)
            torch.manual_seed(derive_seed(self.options.seed, self.step, self.ranks.rank))
        parts = micro_batches(batch, self.micro_batch)
        clips = sum(n for _, n in parts)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i, (part, n) in enumerate(parts):
            last = i == len(parts) - 1
            with contextlib.nullcontext() if last or not self.ranks.distributed else self.step_model.no_sync():
                with self.accel.autocast():
                    loss = self.loss_fn(self.step_model, to_device(part, self.device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at step {self.step} (epoch {self.epoch})")
                self.accel.backward(loss if len(parts) == 1 else loss * (n / clips))
            total += loss.item() * n / clips
        self.accel.step(self.optimizer, self.model.parameters(), self.clip_grad_norm)
        self.scheduler.step()
        self.step += 1
        return mean_over_ranks(total, self.ranks), clips * self.ranks.world

    def _close_epoch(self, epoch: int) -> None:
        record = {
            "epoch": epoch,
            "loss": self.meter.mean(),
            "lr": self.scheduler.get_last_lr()[0],
            "clips_per_s": self.meter.clips_per_second(),
        }
        if self.on_epoch_end is not None:
            record.update(self.on_epoch_end(epoch, record) or {})
            self.model.train()
        if self.stopping is not None:
            record.update(self.stopping.observe(epoch, self.model))
            self.model.train()
        self.history.append(record)
        self.meter = EpochMeter()
        log.info("epoch %d/%d: %s", epoch + 1, self.options.max_epochs, ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"))

    def fit(self) -> TrainResult:
        """Train until ``options.max_epochs`` are done or the stop score stops improving (then the best weights
        are restored); raises :class:`TrainingIncomplete` on a deadline or signal, :class:`CudaOutOfMemory` when
        CUDA runs out of memory (in a step or the epoch's scoring)."""
        opts = self.options
        watch = DeadlineWatch(
            resolve_stop_time(opts.deadline, opts.time_budget_min, opts.safety_margin_min, now=self.clock()), self.clock,
            margin_s=60.0 * opts.safety_margin_min,
        )
        stop_after = int(os.environ[STOP_AFTER_STEPS_ENV]) if os.environ.get(STOP_AFTER_STEPS_ENV) else None
        steps_done = 0
        self.model.train()
        log.info("%s", self.accel.describe() + (f", rank {self.ranks.rank} of {self.ranks.world}" if self.ranks.distributed else ""))
        with StopSignals() as signals, tqdm(total=self.total_steps, initial=self.step, desc=self.desc, unit="step", mininterval=1.0,
                                            disable=not self.ranks.main) as bar:
            if watch.stop_at is not None:  # logged once the stop signals are handled (tests wait for this line)
                log.info("must stop by %s (unix %.0f)", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(watch.stop_at)), watch.stop_at)
            with self._out_of_memory_named():
                batches = self._batch_iterator()
                while self.step < self.total_steps and not self.stopped:
                    epoch = self.epoch
                    while self.epoch == epoch and self.step < self.total_steps:
                        reason = stop_together(self._stop_reason(watch, signals, steps_done, stop_after), self.ranks)
                        if reason is not None:
                            self._checkpoint(watch)
                            raise TrainingIncomplete(self.step, self.total_steps, reason, self.state_path)
                        started = self.clock()
                        loss, clips = self._train_step(next(batches))
                        seconds = self.clock() - started
                        steps_done += 1
                        watch.record_step(seconds)
                        self.meter.add(loss, clips, seconds)
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4f}", clips_s=f"{clips / max(seconds, 1e-9):.1f}", refresh=False)
                        if self.step % self.steps_per_epoch == 0:
                            self._close_epoch(epoch)
                            if self.stopped:
                                log.info("stopping after epoch %d: no better %s for %d epochs (best: epoch %d)", epoch + 1,
                                         self.stopping.key, self.stopping.since_best, self.stopping.best_epoch + 1)
                                break
                        if self.step % opts.checkpoint_every == 0 and self.step < self.total_steps:
                            self._checkpoint(watch)
        if self.stopping is not None:
            self.stopping.restore_best(self.model)
        return TrainResult(history=self.history, final_loss=self.history[-1]["loss"], steps=self.step,
                           stopping=None if self.stopping is None else self.stopping.summary())

    @contextlib.contextmanager
    def _out_of_memory_named(self):
        """Turn a CUDA out-of-memory error of the body into :class:`CudaOutOfMemory` (the micro-batch named)."""
        try:
            yield
        except Exception as error:
            if is_cuda_oom(error):
                raise CudaOutOfMemory(self.step, self.micro_batch, error) from error
            raise

    @property
    def stopped(self) -> bool:
        """True once the stop score has not improved for ``patience`` epochs (after ``min_epochs``)."""
        return self.stopping is not None and self.stopping.stopped

    def _checkpoint(self, watch: DeadlineWatch) -> None:
        started = self.clock()
        self.save_state()
        watch.record_checkpoint(self.clock() - started)

