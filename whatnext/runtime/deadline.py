"""When a training process must stop: deadlines, step-time estimates and stop signals.

The stop time (unix seconds) is the earliest of an explicit ``--deadline`` (ISO 8601),
start + ``--time-budget-min`` and, inside a SLURM job, the job's end time as reported
by ``squeue -h -j $SLURM_JOB_ID -o %e`` (Slurm 22.05 exports no ``SLURM_JOB_END_TIME``),
minus a safety margin. :class:`DeadlineWatch` says, at a step boundary, whether one
more step plus a checkpoint write would cross it; :class:`StopSignals` turns
SIGTERM / SIGUSR1 / SIGURG into a request to stop at the next step boundary.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import time
from collections import deque
from datetime import datetime
from typing import Callable, Mapping

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGURG)
SQUEUE_NO_END = {"", "N/A", "NONE", "UNKNOWN", "UNLIMITED", "INVALID"}


def parse_deadline(text: str) -> float:
    """ISO 8601 date-time -> unix seconds; a value without a zone is local time (as squeue prints)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"deadline {text!r} is not an ISO 8601 date-time (e.g. 2026-11-22T04:00:00+00:00)") from None
    return moment.timestamp()


def slurm_job_end(job_id: str, run: Callable = subprocess.run) -> float | None:
    """End time (unix seconds) of SLURM job ``job_id`` from squeue, or None if squeue cannot tell."""
    try:
        done = run(["squeue", "-h", "-j", job_id, "-o", "%e"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("cannot ask squeue for the end time of job %s (%s); no SLURM deadline", job_id, err)
        return None
    text = done.stdout.strip().splitlines()[0].strip() if done.stdout.strip() else ""
    if done.returncode != 0 or text.upper() in SQUEUE_NO_END:
        log.warning("squeue gives no end time for job %s (rc %s, %r); no SLURM deadline", job_id, done.returncode, text)
        return None
    return parse_deadline(text)


def resolve_stop_time(
    deadline: str | None,
    time_budget_min: float | None,
    safety_margin_min: float,
    *,
    now: float,
    environ: Mapping[str, str] = os.environ,
    job_end: Callable[[str], float | None] = slurm_job_end,
) -> float | None:
    """Unix time at which training must have checkpointed and stopped, or None for no limit.

    The earliest of ``deadline``, ``now + time_budget_min`` and the SLURM job's end
    (when ``SLURM_JOB_ID`` is set), minus ``safety_margin_min``.
    """
    candidates = []
    if deadline:
        candidates.append(parse_deadline(deadline))
    if time_budget_min is not None:
        candidates.append(now + 60.0 * time_budget_min)
    job_id = environ.get("SLURM_JOB_ID")
    if job_id:
        end = job_end(job_id)
        if end is not None:
            candidates.append(end)
    if not candidates:
        return None
    return min(candidates) - 60.0 * safety_margin_min


class RunningMedian:
    """Median of the last ``window`` values (step durations in seconds)."""

    def __init__(self, window: int = 50):
        self.values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self.values.append(value)

    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


class DeadlineWatch:
    """Decides, at a step boundary, whether the next step and a checkpoint still fit before ``stop_at``.

    ``stop_at`` is unix seconds (None: never stop); ``clock`` returns unix seconds.
    The step cost is the running median of recorded step durations; the checkpoint
    cost is the longest recorded checkpoint write (one step's time until one is measured).
    """

    def __init__(self, stop_at: float | None, clock: Callable[[], float] = time.time, window: int = 50,
                 margin_s: float = 0.0):
        self.stop_at = stop_at
        self.clock = clock
        self.margin_s = margin_s  # the safety margin already subtracted from stop_at, for the stop message
        self.started_at = clock()
        self.step_seconds = RunningMedian(window)
        self.checkpoint_seconds: float | None = None

    def record_step(self, seconds: float) -> None:
        self.step_seconds.add(seconds)

    def record_checkpoint(self, seconds: float) -> None:
        self.checkpoint_seconds = max(seconds, self.checkpoint_seconds or 0.0)

    def seconds_left(self) -> float | None:
        return None if self.stop_at is None else self.stop_at - self.clock()

    def next_step_would_cross(self) -> bool:
        """True when now + median step + checkpoint write reaches the stop time."""
        left = self.seconds_left()
        if left is None:
            return False
        step = self.step_seconds.median() or 0.0
        checkpoint = self.checkpoint_seconds if self.checkpoint_seconds is not None else step
        return step + checkpoint >= left


    def stop_reason(self) -> str:
        """Why a deadline stop happened: ``"deadline"``, or, when the safety margin alone put the stop time
        before the start (the margin longer than the time that was left), a sentence saying so and naming
        the flag to lower."""
        if self.stop_at is None or self.stop_at > self.started_at:
            return "deadline"
        left_min = (self.stop_at + self.margin_s - self.started_at) / 60.0
        if left_min <= 0:
            return "deadline"
        return (f"deadline: the stop time was already past at the start, because the safety margin "
                f"({self.margin_s / 60.0:g} min) is longer than the {left_min:.3g} min that were left; "
                "lower --safety-margin-min")


class StopSignals:
    """Context manager recording SIGTERM / SIGUSR1 / SIGURG so training can stop at a step boundary.

    ``received`` holds the first signal number seen (None if none). Previous handlers
    are restored on exit. Outside the main thread (no signal handlers possible) it
    records nothing.
    """

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = signals
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            log.warning("received %s: will checkpoint and stop after the current step", signal.Signals(signum).name)
            self.received = signum

    def __enter__(self) -> "StopSignals":
        try:
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            log.debug("stop signals not installed outside the main thread")
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
