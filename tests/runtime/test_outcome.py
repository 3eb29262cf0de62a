"""whatnext.runtime.outcome: how a run ended, as the retry policy reads it."""

from __future__ import annotations

import json

import pytest
import torch

from whatnext.runtime.outcome import MAX_RUNS, classify, read_runs, recorded


@pytest.mark.parametrize("error, outcome", [
    (None, "completed"),
    (SystemExit(0), "completed"),
    (SystemExit(75), "incomplete"),
    (SystemExit(2), "failed"),
    (MemoryError(), "memory_error"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "cuda_oom"),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), "cuda_oom"),
    (RuntimeError("shape mismatch"), "failed"),
    (KeyboardInterrupt(), "failed"),
])
def test_classify(error, outcome):
    assert classify(error)[0] == outcome


def test_a_run_killed_from_outside_stays_running_with_its_slurm_job_id(tmp_path):
    path = tmp_path / "job.json"
    with recorded(path, environ={"SLURM_JOB_ID": "77"}):
        during = read_runs(path)
    assert [(r["outcome"], r["slurm_job_id"]) for r in during] == [("running", "77")]
    assert [r["outcome"] for r in read_runs(path)] == ["completed"]


def test_only_the_last_runs_are_kept_and_rank_0_alone_records(tmp_path):
    path = tmp_path / "job.json"
    for _ in range(MAX_RUNS + 3):
        with recorded(path, environ={}):
            pass
    with recorded(path, environ={"RANK": "1"}):
        pass
    assert len(read_runs(path)) == MAX_RUNS


def test_unreadable_or_missing_file_reads_as_no_runs(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "odd.json").write_text(json.dumps({"runs": "x"}))
    assert read_runs(tmp_path / "bad.json") == read_runs(tmp_path / "odd.json") == read_runs(tmp_path / "none.json") == []


def test_the_exception_still_propagates(tmp_path):
    with pytest.raises(MemoryError):
        with recorded(tmp_path / "job.json", environ={}):
            raise MemoryError()
    assert read_runs(tmp_path / "job.json")[-1]["outcome"] == "memory_error"


def fake_nvidia_smi(folder, lines: list[str]):
    """An ``nvidia-smi`` that prints ``lines`` once a tenth of a second and records its arguments."""
    script = folder / "nvidia-smi"
    body = "\n".join(f"  echo '{line}'" for line in lines)
    script.write_text(f"#!/bin/bash\necho \"$@\" > {folder}/args\nwhile true; do\n{body}\n  sleep 0.1\ndone\n")
    script.chmod(0o755)
    return str(script)


def test_gpu_sampler_averages_the_job_s_gpus_and_is_idle_without_nvidia_smi(tmp_path):
    import time

    from whatnext.runtime.gpu_sampler import GpuSampler

    executable = fake_nvidia_smi(tmp_path, ["40, 1000", "[N/A], 5", "20, 3000"])  # 2 GPUs a sample; a bad line skipped
    with GpuSampler(interval_s=0.1, environ={"CUDA_VISIBLE_DEVICES": "0,1"}, which=lambda name: executable) as sampler:
        time.sleep(0.8)
    summary = sampler.summary()
    assert summary["samples"] >= 2 and summary["util_mean_pct"] == summary["util_max_pct"] == 30.0
    assert summary["mem_max_mb"] == 4000.0
    assert (tmp_path / "args").read_text().split() == ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                                       "--loop-ms=100", "--id=0,1"]
    with GpuSampler(environ={}, which=lambda name: None) as idle:
        pass
    assert idle.summary() is None and idle.process is None


def test_the_run_record_carries_the_gpu_summary(tmp_path):
    import time

    from whatnext.runtime.gpu_sampler import GpuSampler

    executable = fake_nvidia_smi(tmp_path, ["75, 2048"])
    sampler = GpuSampler(interval_s=0.1, environ={"CUDA_VISIBLE_DEVICES": "0"}, which=lambda name: executable)
    with recorded(tmp_path / "job.json", environ={}, sampler=sampler):
        time.sleep(0.5)
    gpu = read_runs(tmp_path / "job.json")[-1]["gpu"]
    assert gpu["util_mean_pct"] == 75.0 and gpu["mem_max_mb"] == 2048.0 and gpu["samples"] >= 2
