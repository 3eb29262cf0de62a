"""The shared training flags: parsed into TrainOptions, and runtime outcomes mapped to exit codes."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from whatnext.runtime.checkpoint import CheckpointError
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.trainer import EXIT_INCOMPLETE, TrainingIncomplete, TrainOptions


def make_command(action):
    @click.command()
    @click.option("--name", default="x")
    @training_options(max_epochs=7, lr=0.5)
    def command(name, train):
        action(name, train)

    return command


def test_flags_arrive_as_one_train_options_with_per_cli_defaults(tmp_path):
    seen = []
    result = CliRunner().invoke(make_command(lambda name, train: seen.append((name, train))),
                                ["--name", "y", "--batch-size", "3", "--threads", "1", "--resume-dir", str(tmp_path / "r"),
                                 "--deadline", "2026-11-22T03:00:00+00:00", "--log", str(tmp_path / "run.log")])
    assert result.exit_code == 0, result.output
    name, train = seen[0]
    assert name == "y"
    assert train == TrainOptions(max_epochs=7, lr=0.5, batch_size=3, threads=1, resume_dir=tmp_path / "r",
                                 deadline="2026-11-22T03:00:00+00:00", log=tmp_path / "run.log")


def test_incomplete_training_exits_75(tmp_path):
    def stop(name, train):
        raise TrainingIncomplete(3, 10, "deadline", Path("r/trainer_state.pt"))

    result = CliRunner().invoke(make_command(stop), [])
    assert result.exit_code == EXIT_INCOMPLETE == 75


def test_bad_checkpoint_becomes_a_click_error_naming_the_file():
    def bad(name, train):
        raise CheckpointError("prev.pt: unreadable or truncated checkpoint")

    result = CliRunner().invoke(make_command(bad), [])
    assert result.exit_code == 2 and "prev.pt: unreadable" in result.output


def test_malformed_deadline_is_a_usage_error():
    result = CliRunner().invoke(make_command(lambda n, t: None), ["--deadline", "soon"])
    assert result.exit_code == 2 and "not an ISO 8601" in result.output


def test_log_flag_writes_the_log_file(tmp_path):
    import logging

    log_file = tmp_path / "logs" / "run.log"
    result = CliRunner().invoke(make_command(lambda n, t: logging.getLogger("x").info("hello log")),
                                ["--log", str(log_file)])
    assert result.exit_code == 0 and "hello log" in log_file.read_text()


def test_unknown_device_is_a_usage_error():
    result = CliRunner().invoke(make_command(lambda n, t: None), ["--device", "gpu0"])
    assert result.exit_code == 2 and "'gpu0' is not a torch device" in result.output


def test_outcome_file_records_each_run_and_why_it_ended(tmp_path, monkeypatch):
    """--outcome: one record per run, oldest first; exit 75 keeps the trainer's reason, a MemoryError is told apart."""
    import json

    outcome = tmp_path / "outcomes" / "job.json"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")

    def stop(name, train):
        running = json.loads(outcome.read_text())["runs"][-1]
        assert (running["outcome"], running["slurm_job_id"]) == ("running", "4242")  # recorded before the work
        raise TrainingIncomplete(3, 10, "signal 15", Path("r/trainer_state.pt"))

    def out_of_memory(name, train):
        raise MemoryError()

    codes = [CliRunner().invoke(make_command(action), ["--outcome", str(outcome)]).exit_code
             for action in (stop, out_of_memory, lambda n, t: None)]
    runs = json.loads(outcome.read_text())["runs"]
    assert codes == [75, 1, 0]
    assert [(r["outcome"], r["detail"]) for r in runs] == [("incomplete", "signal 15"), ("memory_error", "MemoryError"),
                                                          ("completed", "")]
    assert all(r["slurm_job_id"] == "4242" and r["ended"] >= r["started"] for r in runs)


def test_micro_batch_flag_defaults_to_0_the_whole_batch():
    seen = []
    for args in ([], ["--micro-batch", "4"]):
        assert CliRunner().invoke(make_command(lambda name, train: seen.append(train.micro_batch)), args).exit_code == 0
    assert seen == [0, 4]
    assert CliRunner().invoke(make_command(lambda n, t: None), ["--micro-batch", "-1"]).exit_code == 2


def test_a_cuda_out_of_memory_error_is_recorded_with_its_micro_batch_and_exits_non_zero(tmp_path):
    """The retry policy reads ``cuda_oom`` and ``micro_batch`` from the record (workflow_scripts/retry_policy.py)."""
    import json

    import torch

    from whatnext.runtime.trainer import CudaOutOfMemory

    outcome = tmp_path / "job.json"

    def out_of_cuda_memory(name, train):
        raise CudaOutOfMemory(12, train.micro_batch, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))

    result = CliRunner().invoke(make_command(out_of_cuda_memory), ["--micro-batch", "16", "--outcome", str(outcome)])
    run = json.loads(outcome.read_text())["runs"][-1]
    assert result.exit_code == 1 and isinstance(result.exception, CudaOutOfMemory)
    assert (run["outcome"], run["micro_batch"]) == ("cuda_oom", 16)
    assert run["detail"].startswith("CUDA out of memory at step 12, micro-batch 16 clips")
