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
