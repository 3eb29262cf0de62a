"""Retries that know why the previous attempt of a job died: what the resource functions scale by.

Every GPU rule's job records its runs in an outcome file (:mod:`whatnext.runtime.outcome`; the rules pass
``--outcome`` with the path of :func:`outcome_file`). At retry ``attempt`` (1-based), :func:`retry_plan`
reads the causes of the last ``attempt - 1`` recorded runs (attempt 1 reads nothing):

    cause       from                                                          the next attempt
    time        outcome ``incomplete`` (exit 75: the deadline logic stopped    runtime x attempt_growth;
                it before the job's end); Slurm TIMEOUT or DEADLINE           it resumes from its checkpoint
    memory      outcome ``memory_error``; Slurm OUT_OF_MEMORY; Slurm FAILED   mem_mb x mem_growth
                with Slurm's memory-kill line in the job's output (how
                jobacct_gather's OverMemoryKill reports, where no cgroup
                limits memory: "exceeded memory limit ... being killed")
    gpu_memory  outcome ``cuda_oom``                                          the same resources (more host
                                                                              memory cannot help) and half the
                                                                              micro-batch the run recorded
                                                                              (floor 1): gradient accumulation
                                                                              keeps the step's batch; it
                                                                              resumes from its checkpoint
    same        Slurm NODE_FAIL, PREEMPTED, BOOT_FAIL, CANCELLED, any other   the same resources
                failure, or nothing known (no record; no Slurm to ask)

A run that never recorded its end (still ``running``: killed from outside) is looked up in Slurm by the
``slurm_job_id`` it recorded at its start: ``scontrol show job`` (slurmctld keeps finished jobs for
MinJobAge; it also names the job's output file), else ``sacct`` (older jobs, the accounting database).
The causes are cumulative: an attempt after a memory kill and then a time-out gets both more memory and
more time. The micro-batch is half the one that the latest ``cuda_oom`` run among those read recorded
(``micro_batch``), else 0 (the whole batch): after two CUDA out-of-memory errors it is a quarter. A job
killed before its CLI recorded its start (during imports) leaves no Slurm job id: its retry gets the same
resources.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping

from whatnext.runtime.outcome import read_runs

OUTCOME_CAUSES = {"incomplete": "time", "memory_error": "memory", "cuda_oom": "gpu_memory"}
SLURM_CAUSES = {"TIMEOUT": "time", "DEADLINE": "time", "OUT_OF_MEMORY": "memory"}
UNFINISHED = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "STOPPED"}

_finished: dict[str, "SlurmRecord"] = {}


@dataclass(frozen=True)
class RetryPlan:
    """What the earlier attempts ran out of: ``time_retries`` and ``memory_retries`` scale runtime and mem_mb;
    ``micro_batch`` is the next attempt's ``--micro-batch`` (clips per forward pass; 0: the whole batch)."""

    causes: tuple[str, ...] = ()
    micro_batch: int = 0

    @property
    def time_retries(self) -> int:
        return self.causes.count("time")

    @property
    def memory_retries(self) -> int:
        return self.causes.count("memory")


def outcome_file(logs_dir: str, rule_name: str, wildcards: Mapping) -> str:
    """Where a job's runs are recorded: ``{logs}/outcomes/<rule>/<name>=<value>,....json`` (unique per job)."""
    name = ",".join(f"{key}={value}" for key, value in wildcards.items()) or "job"
    return f"{logs_dir}/outcomes/{rule_name}/{name}.json"


@dataclass(frozen=True)
class SlurmRecord:
    """What Slurm says of a job: ``state`` (TIMEOUT, FAILED...), ``exit_code`` (``code:signal``) and the path
    of its output file (None when Slurm does not say: sacct)."""

    state: str
    exit_code: str = ""
    stdout: str | None = None


MEMORY_KILL_LINES = ("exceeded memory limit", "out of memory", "oom-kill", "oom_kill")


def _scontrol(job_id: str, run: Callable) -> SlurmRecord | None:
    done = run(["scontrol", "show", "job", job_id, "--oneliner"], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    fields = dict(item.split("=", 1) for item in done.stdout.split() if "=" in item)
    if "JobState" not in fields:
        return None
    return SlurmRecord(fields["JobState"], fields.get("ExitCode", ""), fields.get("StdOut") or None)


def _sacct(job_id: str, run: Callable) -> SlurmRecord | None:
    done = run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"], capture_output=True, text=True,
               timeout=30, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []
    if not lines:
        return None
    state, _, exit_code = lines[0].partition("|")
    return SlurmRecord(state.split()[0] if state.split() else "", exit_code.strip())


def slurm_record(job_id: str, run: Callable = subprocess.run) -> SlurmRecord | None:
    """Slurm's record of job ``job_id``, or None if Slurm cannot tell. Finished jobs' records are remembered
    (the resource functions ask at every retry of every job)."""
    if job_id in _finished:
        return _finished[job_id]
    found = None
    for ask in (_scontrol, _sacct):
        try:
            found = ask(job_id, run)
        except (OSError, subprocess.TimeoutExpired):
            found = None
        if found is not None:
            break
    if found is not None and found.state not in UNFINISHED:
        _finished[job_id] = found
    return found


def killed_for_memory(stdout: str | None) -> bool:
    """True when the job's output holds Slurm's line for a memory kill (the tail is enough: it ends the job)."""
    if not stdout:
        return False
    try:
        with open(stdout, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 65536))
            tail = handle.read().decode("utf-8", "replace").lower()
    except OSError:
        return False
    return any(line in tail for line in MEMORY_KILL_LINES)


def slurm_cause(record: SlurmRecord) -> str:
    """The cause of an attempt whose run never recorded its end, from Slurm's record of it (see the module
    docstring)."""
    if record.state in SLURM_CAUSES:
        return SLURM_CAUSES[record.state]
    if record.state == "FAILED" and killed_for_memory(record.stdout):
        return "memory"
    return "same"


def run_cause(run: Mapping, slurm: Callable[[str], SlurmRecord | None] = slurm_record) -> str:
    """Why one recorded run ended: ``time``, ``memory``, ``gpu_memory`` or ``same`` (see the module docstring)."""
    outcome = run.get("outcome")
    if outcome in OUTCOME_CAUSES:
        return OUTCOME_CAUSES[outcome]
    if outcome != "running" or not run.get("slurm_job_id"):
        return "same"
    record = slurm(str(run["slurm_job_id"]))
    return "same" if record is None else slurm_cause(record)


def retry_plan(outcome_path: str, attempt: int, slurm: Callable[[str], SlurmRecord | None] = slurm_record) -> RetryPlan:
    """The causes of the ``attempt - 1`` runs before retry ``attempt`` (none at attempt 1)."""
    if attempt <= 1:
        return RetryPlan()
    runs = read_runs(outcome_path)[-(attempt - 1):]
    return RetryPlan(tuple(run_cause(run, slurm) for run in runs), smaller_micro_batch(runs))


def smaller_micro_batch(runs: list[dict]) -> int:
    """Half the micro-batch (floor 1) of the latest of ``runs`` that ran out of CUDA memory and recorded the
    micro-batch it ran at; 0 (the whole batch) when none did."""
    for run in reversed(runs):
        micro_batch = run.get("micro_batch")
        if run.get("outcome") == "cuda_oom" and isinstance(micro_batch, int) and micro_batch >= 1:
            return max(1, micro_batch // 2)
    return 0
