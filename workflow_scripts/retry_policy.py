"""Retries that know why the previous attempt of a job died: what the resource functions scale by.

Every GPU rule's job records its runs in an outcome file (:mod:`whatnext.runtime.outcome`; the rules pass
``--outcome`` with the path of :func:`outcome_file`). At retry ``attempt`` (1-based), :func:`retry_plan`
reads the causes of the last ``attempt - 1`` recorded runs (attempt 1 reads nothing):

    cause       from                                                          the next attempt
    time        outcome ``incomplete`` (exit 75: the deadline logic stopped    runtime x attempt_growth;
                it before the job's end); Slurm TIMEOUT or DEADLINE           it resumes from its checkpoint
    memory      outcome ``memory_error``; Slurm OUT_OF_MEMORY; Slurm FAILED   mem_mb x mem_growth
                by signal 9 of a run that never recorded its end (how
                jobacct_gather's OverMemoryKill reports, where no cgroup
                limits memory)
    gpu_memory  outcome ``cuda_oom``                                          the same resources: more host
                                                                              memory cannot help, and the
                                                                              trainer has no micro-batching
    same        Slurm NODE_FAIL, PREEMPTED, BOOT_FAIL, CANCELLED, any other   the same resources
                failure, or nothing known (no record; no Slurm to ask)

A run that never recorded its end (still ``running``: killed from outside) is looked up in Slurm by the
``slurm_job_id`` it recorded at its start: ``sacct``, else ``scontrol show job`` (slurmctld keeps finished
jobs for MinJobAge: clusters without an accounting database). The causes are cumulative: an attempt after
a memory kill and then a time-out gets both more memory and more time. A job killed before its CLI
recorded its start (during imports) leaves no Slurm job id: its retry gets the same resources.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping

from whatnext.runtime.outcome import read_runs

OUTCOME_CAUSES = {"incomplete": "time", "memory_error": "memory", "cuda_oom": "gpu_memory"}
SLURM_CAUSES = {"TIMEOUT": "time", "DEADLINE": "time", "OUT_OF_MEMORY": "memory"}
UNFINISHED = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "STOPPED"}

_finished_states: dict[str, tuple[str, str]] = {}


@dataclass(frozen=True)
class RetryPlan:
    """What the earlier attempts ran out of: ``time_retries`` and ``memory_retries`` scale runtime and mem_mb."""

    causes: tuple[str, ...] = ()

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


def _sacct(job_id: str, run: Callable) -> tuple[str, str] | None:
    done = run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"], capture_output=True, text=True,
               timeout=30, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []
    if not lines:
        return None
    state, _, exit_code = lines[0].partition("|")
    return state.split()[0] if state.split() else "", exit_code.strip()


def _scontrol(job_id: str, run: Callable) -> tuple[str, str] | None:
    done = run(["scontrol", "show", "job", job_id, "--oneliner"], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    fields = dict(item.split("=", 1) for item in done.stdout.split() if "=" in item)
    return (fields["JobState"], fields.get("ExitCode", "")) if "JobState" in fields else None


def slurm_state(job_id: str, run: Callable = subprocess.run) -> tuple[str, str] | None:
    """``(State, ExitCode)`` of Slurm job ``job_id`` (e.g. ``("TIMEOUT", "0:0")``), or None if Slurm cannot tell.
    Finished states are remembered (the resource functions ask for every retry of every job)."""
    if job_id in _finished_states:
        return _finished_states[job_id]
    found = None
    for ask in (_sacct, _scontrol):
        try:
            found = ask(job_id, run)
        except (OSError, subprocess.TimeoutExpired):
            found = None
        if found is not None:
            break
    if found is not None and found[0] not in UNFINISHED:
        _finished_states[job_id] = found
    return found


def slurm_cause(state: str, exit_code: str) -> str:
    """The cause of an attempt whose run never recorded its end, from Slurm's record of it (see the module
    docstring); ``exit_code`` is Slurm's ``code:signal``."""
    if state in SLURM_CAUSES:
        return SLURM_CAUSES[state]
    if state == "FAILED" and exit_code.split(":")[-1] == "9":
        return "memory"
    return "same"


def run_cause(run: Mapping, slurm: Callable[[str], tuple[str, str] | None] = slurm_state) -> str:
    """Why one recorded run ended: ``time``, ``memory``, ``gpu_memory`` or ``same`` (see the module docstring)."""
    outcome = run.get("outcome")
    if outcome in OUTCOME_CAUSES:
        return OUTCOME_CAUSES[outcome]
    if outcome != "running" or not run.get("slurm_job_id"):
        return "same"
    record = slurm(str(run["slurm_job_id"]))
    return "same" if record is None else slurm_cause(*record)


def retry_plan(outcome_path: str, attempt: int, slurm: Callable[[str], tuple[str, str] | None] = slurm_state) -> RetryPlan:
    """The causes of the ``attempt - 1`` runs before retry ``attempt`` (none at attempt 1)."""
    if attempt <= 1:
        return RetryPlan()
    runs = read_runs(outcome_path)[-(attempt - 1):]
    return RetryPlan(tuple(run_cause(run, slurm) for run in runs))
