"""Retries that know why a job died (workflow_scripts/retry_policy.py) and what the resource functions make of it."""

from __future__ import annotations

import json
import math
import subprocess
from datetime import datetime, timezone

import pytest

from workflow_scripts import retry_policy
from workflow_scripts.resources import memory_mb
from workflow_scripts.retry_policy import SlurmRecord, outcome_file, retry_plan, run_cause, slurm_cause, slurm_record
from workflow_scripts.time_limits import estimate_minutes, runtime_minutes

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def write_runs(path, *runs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": [dict(run) for run in runs]}))


def run(outcome, job=None):
    return {"outcome": outcome, "slurm_job_id": job, "started": 0.0}


def slurm_says(states):
    return lambda job_id: states.get(job_id)


@pytest.mark.parametrize("state, exit_code, cause", [
    ("TIMEOUT", "0:15", "time"),
    ("DEADLINE", "0:0", "time"),
    ("OUT_OF_MEMORY", "0:125", "memory"),
    ("FAILED", "1:0", "same"),
    ("NODE_FAIL", "0:0", "same"),
    ("PREEMPTED", "0:15", "same"),
    ("CANCELLED", "0:15", "same"),
    ("BOOT_FAIL", "0:0", "same"),
])
def test_slurm_states(state, exit_code, cause):
    assert slurm_cause(SlurmRecord(state, exit_code)) == cause


def test_a_failed_job_whose_output_shows_slurm_s_memory_kill_ran_out_of_memory(tmp_path):
    """Where no cgroup limits memory, jobacct_gather's OverMemoryKill ends the job FAILED (exit 1 of the job
    step's srun, or signal 9): only its output tells; these lines are the local Slurm's (22.05)."""
    killed = tmp_path / "1.log"
    killed.write_text("Shell command: python hog.py\n"
                      "slurmstepd-localhost: error: StepId=1.0 exceeded memory limit (368627712 > 367001600), being killed\n"
                      "slurmstepd-localhost: error: Exceeded job memory limit\nsrun: error: localhost: task 0: Killed\n")
    failed = tmp_path / "2.log"
    failed.write_text("Traceback (most recent call last):\nValueError: bad\n")
    assert slurm_cause(SlurmRecord("FAILED", "1:0", str(killed))) == "memory"
    assert slurm_cause(SlurmRecord("FAILED", "0:9", str(killed))) == "memory"
    assert slurm_cause(SlurmRecord("FAILED", "1:0", str(failed))) == "same"
    assert slurm_cause(SlurmRecord("FAILED", "1:0", str(tmp_path / "gone.log"))) == "same"
    assert slurm_cause(SlurmRecord("COMPLETED", "0:0", str(killed))) == "same"


def test_what_the_job_recorded_wins_and_slurm_is_asked_only_for_runs_killed_from_outside():
    asked = []

    def slurm(job_id):
        asked.append(job_id)
        return SlurmRecord("TIMEOUT", "0:15")

    causes = [run_cause(run(o, "9"), slurm) for o in ("incomplete", "memory_error", "cuda_oom", "failed", "completed")]
    assert causes == ["time", "memory", "gpu_memory", "same", "same"] and asked == []
    assert run_cause(run("running", "9"), slurm) == "time" and asked == ["9"]
    assert run_cause(run("running", None), slurm) == "same"  # not under Slurm: nobody to ask
    assert run_cause(run("running", "10"), lambda job_id: None) == "same"  # Slurm forgot it


def test_attempt_1_reads_nothing_and_retry_k_reads_the_last_k_minus_1_runs(tmp_path):
    path = tmp_path / "o.json"
    write_runs(path, run("memory_error"), run("memory_error"), run("running", "21"), run("incomplete"))
    slurm = slurm_says({"21": SlurmRecord("OUT_OF_MEMORY", "0:125")})
    assert retry_plan(str(path), 1, slurm).causes == ()
    assert retry_plan(str(path), 2, slurm).causes == ("time",)
    plan = retry_plan(str(path), 4, slurm)  # the first record is an older invocation's
    assert plan.causes == ("memory", "memory", "time") and (plan.time_retries, plan.memory_retries) == (1, 2)
    assert retry_plan(str(tmp_path / "missing.json"), 3, slurm).causes == ()


def oom(micro_batch):
    return {**run("cuda_oom"), "micro_batch": micro_batch}


def test_a_cuda_out_of_memory_halves_the_micro_batch_it_recorded_and_keeps_time_and_memory(tmp_path):
    path = tmp_path / "o.json"
    write_runs(path, oom(64))
    plan = retry_plan(str(path), 2, slurm_says({}))
    assert (plan.causes, plan.micro_batch, plan.time_retries, plan.memory_retries) == (("gpu_memory",), 32, 0, 0)
    assert retry_plan(str(path), 1, slurm_says({})).micro_batch == 0  # attempt 1: the whole batch


def test_the_latest_cuda_out_of_memory_decides_and_the_micro_batch_stops_at_1(tmp_path):
    path = tmp_path / "o.json"
    write_runs(path, oom(64), oom(32), run("incomplete"))  # out of memory twice, then out of time at 16
    assert retry_plan(str(path), 4, slurm_says({})).micro_batch == 16
    write_runs(path, oom(1))
    assert retry_plan(str(path), 2, slurm_says({})).micro_batch == 1
    write_runs(path, run("cuda_oom"), run("memory_error"))  # no micro-batch recorded (not the trainer's error)
    plan = retry_plan(str(path), 3, slurm_says({}))
    assert (plan.micro_batch, plan.memory_retries) == (0, 1)


def test_slurm_record_asks_scontrol_then_sacct_and_remembers_finished_jobs(monkeypatch):
    monkeypatch.setattr(retry_policy, "_finished", {})
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv[0])
        return subprocess.CompletedProcess(argv, 0, "JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 "
                                                    "StdOut=/w/.snakemake/slurm_logs/rule_x/5.log\n", "")

    assert slurm_record("5", fake_run) == SlurmRecord("TIMEOUT", "0:15", "/w/.snakemake/slurm_logs/rule_x/5.log")
    assert slurm_record("5", fake_run).state == "TIMEOUT" and calls == ["scontrol"]  # remembered

    def forgotten_by_slurmctld(argv, **kwargs):  # past MinJobAge: only the accounting database knows
        if argv[0] == "scontrol":
            return subprocess.CompletedProcess(argv, 1, "", "slurm_load_jobs error: Invalid job id specified")
        assert argv[:3] == ["sacct", "-j", "6"]
        return subprocess.CompletedProcess(argv, 0, "CANCELLED by 0|0:15\n", "")

    assert slurm_record("6", forgotten_by_slurmctld) == SlurmRecord("CANCELLED", "0:15")
    assert slurm_record("7", lambda argv, **kw: (_ for _ in ()).throw(FileNotFoundError(argv[0]))) is None
    running = lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "JobId=8 JobState=RUNNING ExitCode=0:0\n", "")  # noqa: E731
    assert slurm_record("8", running).state == "RUNNING" and "8" not in retry_policy._finished


def test_outcome_file_is_one_per_job():
    assert outcome_file("r/logs", "finetune_cascade", {"gen": "2", "head": "attn", "round": "0", "fit": "train"}) == \
        "r/logs/outcomes/finetune_cascade/gen=2,head=attn,round=0,fit=train.json"


def test_memory_grows_only_with_memory_retries_and_stops_at_the_cap():
    config = {"resources": {"mem_mb": 1000, "mem_growth": 2}}
    assert [memory_mb("finetune_scratch", config, n) for n in (0, 1, 2)] == [1000, 2000, 4000]
    capped = {"resources": {"mem_mb": 1000, "mem_growth": 3, "max_mem_mb": 5000}}
    assert memory_mb("finetune_scratch", capped, 2) == 5000


def test_runtime_grows_only_with_time_retries(config):
    """A retry after a memory kill or a node failure keeps its limit; after a time-out it grows."""
    wildcards = {"family": "cascade", "gen": "1"}
    config["resources"]["attempt_growth"] = 3

    def minutes(attempt, time_retries):
        return runtime_minutes("ssl_pretrain", wildcards, attempt, config, now=lambda: NOW, time_retries=time_retries)

    estimate = estimate_minutes("ssl_pretrain", wildcards, config).minutes  # 2 generations' clip-epochs, no headroom
    first, once, twice = (math.ceil(estimate * 3 ** k) for k in range(3))
    assert first < once < twice
    assert [minutes(1, 0), minutes(2, 0), minutes(2, 1), minutes(3, 1), minutes(3, 2)] == [first, first, once, once, twice]
    assert minutes(3, None) == twice  # not told: every earlier attempt counts, as before
