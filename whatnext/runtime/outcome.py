"""How each run of a job ended, recorded for the workflow's retry policy (workflow_scripts/retry_policy.py).

A stage CLI given ``--outcome FILE`` records its run in FILE, a JSON document ``{"runs": [...]}`` (the
last :data:`MAX_RUNS` runs, oldest first, rewritten atomically). At the start of the run it appends::

    {"started": unix s, "slurm_job_id": "123" or null, "host": ..., "pid": ..., "outcome": "running"}

and at its end it sets ``ended``, ``outcome``, ``detail`` and, where ``nvidia-smi`` sampled the job's GPUs
(:mod:`whatnext.runtime.gpu_sampler`), ``gpu`` (mean and peak utilisation, peak memory):

    ``completed``     exit 0
    ``incomplete``    exit 75: stopped before a deadline, the job's time limit or on a stop signal, state
                      saved (detail: the trainer's reason); a retry with more time resumes it
    ``cuda_oom``      torch's CUDA out-of-memory error; when the trainer raised it
                      (:class:`whatnext.runtime.trainer.CudaOutOfMemory`), the record also has
                      ``micro_batch``, the clips per forward pass it ran at, which the retry halves
    ``memory_error``  MemoryError (host memory)
    ``failed``        any other end (detail: the exit code or the exception type)

A run killed from outside (Slurm's time limit or memory kill, a node failure) keeps ``running``: the retry
policy then asks Slurm about its ``slurm_job_id``. Only rank 0 of a data-parallel job records (``RANK``).
No torch here: light stages may import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from whatnext.runtime.atomic import write_json
from whatnext.runtime.gpu_sampler import GpuSampler

MAX_RUNS = 20
EXIT_INCOMPLETE = 75  # whatnext.runtime.trainer.EXIT_INCOMPLETE (not imported: no torch here)
OUTCOMES = ("running", "completed", "incomplete", "cuda_oom", "memory_error", "failed")


def read_runs(path: str | os.PathLike) -> list[dict]:
    """The runs recorded in ``path``, oldest first; [] when the file is missing or unreadable."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    runs = document.get("runs") if isinstance(document, dict) else None
    return [run for run in runs if isinstance(run, dict)] if isinstance(runs, list) else []


def is_cuda_oom(error: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (or the RuntimeError older torch raised), told apart without importing torch."""
    kind = type(error)
    if kind.__name__ == "OutOfMemoryError" and kind.__module__.startswith("torch"):
        return True
    return isinstance(error, RuntimeError) and "CUDA out of memory" in str(error)


def classify(error: BaseException | None) -> tuple[str, str]:
    """``(outcome, detail)`` of a run that ended with ``error`` (None: returned normally)."""
    if error is None:
        return "completed", ""
    if isinstance(error, SystemExit):
        code = error.code
        if code in (None, 0):
            return "completed", ""
        if code == EXIT_INCOMPLETE:
            return "incomplete", f"exit {EXIT_INCOMPLETE}"
        return "failed", f"exit {code}"
    if is_cuda_oom(error):
        return "cuda_oom", str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    if isinstance(error, MemoryError):
        return "memory_error", type(error).__name__
    return "failed", type(error).__name__


class RunRecord:
    """The current run's entry in the outcome file; ``note(detail)`` sets the detail its end will carry."""

    def __init__(self, path: Path | None, environ=os.environ, clock=time.time, sampler: GpuSampler | None = None):
        self.path, self.clock, self.sampler = path, clock, sampler
        self.entry = {"started": clock(), "slurm_job_id": environ.get("SLURM_JOB_ID"), "host": socket.gethostname(),
                      "pid": os.getpid(), "outcome": "running"}
        self.detail: str | None = None

    def note(self, detail: str) -> None:
        self.detail = detail

    def write(self) -> None:
        if self.path is None:
            return
        runs = [run for run in read_runs(self.path) if run.get("started") != self.entry["started"] or run.get("pid") != self.entry["pid"]]
        write_json(self.path, {"runs": (runs + [self.entry])[-MAX_RUNS:]})

    def finish(self, error: BaseException | None) -> None:
        outcome, detail = classify(error)
        self.entry.update(outcome=outcome, detail=self.detail if self.detail and outcome == "incomplete" else detail,
                          ended=self.clock())
        micro_batch = getattr(error, "micro_batch", None)
        if outcome == "cuda_oom" and isinstance(micro_batch, int):
            self.entry["micro_batch"] = micro_batch
        if self.sampler is not None:
            self.sampler.stop()
            if self.sampler.summary() is not None:
                self.entry["gpu"] = self.sampler.summary()
        self.write()


@contextlib.contextmanager
def recorded(path: str | os.PathLike | None, environ=os.environ, sampler: GpuSampler | None = None) -> Iterator[RunRecord]:
    """Record the run of the ``with`` body in ``path`` (nothing when None, or on a rank other than 0), with
    the GPU samples of ``sampler`` (default: a :class:`GpuSampler`, idle without ``nvidia-smi``)."""
    if path is not None and environ.get("RANK", "0") != "0":
        path = None
    if path is not None and sampler is None:
        sampler = GpuSampler(environ=environ)
    record = RunRecord(None if path is None else Path(path), environ, sampler=sampler if path is not None else None)
    record.write()
    if record.sampler is not None:
        record.sampler.start()
    try:
        yield record
    except BaseException as error:
        record.finish(error)
        raise
    record.finish(None)
