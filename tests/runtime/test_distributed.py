"""Data-parallel training on the CPU (gloo): 2 ranks match 1 process, stop together, resume on any N."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from whatnext.runtime.distributed import Ranks, check_shardable, rank_shard
from whatnext.runtime import launch as launcher
from whatnext.runtime.launch import combined_exit_code
from whatnext.runtime.trainer import EXIT_INCOMPLETE, STATE_FILE, STOP_AFTER_STEPS_ENV, StepBatches

TOY = str(Path(__file__).resolve().parent / "ddp_toy.py")
STEPS = 18  # 48 points, global batch 8, full batches only: 6 steps x 3 epochs


def launch(nproc: int, out: Path, *extra: str, env: dict | None = None, wait: bool = True):
    """``python -m whatnext.runtime.launch --nproc N -- python ddp_toy.py --out OUT ...``."""
    command = [sys.executable, "-m", "whatnext.runtime.launch", "--nproc", str(nproc), "--",
               sys.executable, TOY, "--out", str(out), *extra]
    environ = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])} | (env or {})
    if not wait:
        return subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300)


def test_each_rank_gets_its_contiguous_share_of_the_global_batch():
    keys = list(range(8))
    assert rank_shard(keys, Ranks(0, 2)) == [0, 1, 2, 3]
    assert rank_shard(keys, Ranks(1, 2)) == [4, 5, 6, 7]
    one = StepBatches(48, 8, 5, True, 0, 18, 6, Ranks())
    two = [StepBatches(48, 8, 5, True, 0, 18, 6, Ranks(rank, 2)) for rank in (0, 1)]
    assert [a + b for a, b in zip(*two)] == list(one)  # the 1-process data order, split


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        check_shardable(8, True, Ranks(0, 3))
    with pytest.raises(ValueError, match="full batches only"):
        check_shardable(8, False, Ranks(0, 2))
    check_shardable(7, False, Ranks())  # one process: anything goes


def test_ranks_read_the_launcher_environment():
    assert Ranks.from_env({}) == Ranks(0, 1, 0)
    assert Ranks.from_env({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}) == Ranks(1, 2, 1)
    with pytest.raises(ValueError, match="RANK=2"):
        Ranks.from_env({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})


def test_the_launcher_exit_code_keeps_75_for_an_incomplete_run():
    assert launcher.EXIT_INCOMPLETE == EXIT_INCOMPLETE == 75
    assert combined_exit_code([0, 0]) == 0
    assert combined_exit_code([75, 75]) == 75
    assert combined_exit_code([75, 0]) == 75
    assert combined_exit_code([75, 1]) == 1
    assert combined_exit_code([-9, 75]) == 137


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Finished runs of the toy on 1 and on 2 ranks: {nproc: saved dict}."""
    folder = tmp_path_factory.mktemp("ddp")
    runs = {}
    for nproc in (1, 2):
        done = launch(nproc, folder / f"n{nproc}.pt")
        assert done.returncode == 0, done.stdout + done.stderr
        runs[nproc] = torch.load(folder / f"n{nproc}.pt", weights_only=True)
    return runs


@pytest.mark.slow
def test_two_ranks_follow_the_one_process_loss_curve_and_weights(uninterrupted):
    one, two = uninterrupted[1], uninterrupted[2]
    assert (one["world"], two["world"]) == (1, 2)
    assert len(one["losses"]) == len(two["losses"]) == 3
    torch.testing.assert_close(torch.tensor(two["losses"]), torch.tensor(one["losses"]), rtol=1e-5, atol=1e-7)
    for name, value in one["weights"].items():
        torch.testing.assert_close(two["weights"][name], value, rtol=1e-5, atol=1e-6)
    assert one["losses"][-1] < 0.5 * one["losses"][0]  # it did learn


@pytest.mark.slow
def test_two_ranks_at_micro_batch_3_sync_once_a_step_and_follow_the_whole_batch(tmp_path, uninterrupted):
    """Each rank's 4 clips in passes of 3 + 1 (no_sync on the first, so one all-reduce a step, as without
    micro-batches): the 1-process whole-batch run's weights."""
    done = launch(2, tmp_path / "micro.pt", "--micro-batch", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    result = torch.load(tmp_path / "micro.pt", weights_only=True)
    assert result["syncs"] == uninterrupted[2]["syncs"] == STEPS
    torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(uninterrupted[1]["losses"]), rtol=1e-5, atol=1e-7)
    for name, value in uninterrupted[1]["weights"].items():
        torch.testing.assert_close(result["weights"][name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_ranks_stop_together_with_75_and_resume_exactly_on_two_or_on_one(tmp_path, uninterrupted):
    out = tmp_path / "split.pt"
    stopped = launch(2, out, "--resume-dir", str(tmp_path / "resume"), env={STOP_AFTER_STEPS_ENV: "7"})
    assert stopped.returncode == 75, stopped.stdout + stopped.stderr
    state = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)
    assert state["step"] == 7 and not out.exists()
    shutil.copytree(tmp_path / "resume", tmp_path / "resume-copy")

    resumed = launch(2, out, "--resume-dir", str(tmp_path / "resume"))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = torch.load(out, weights_only=True)
    assert result["losses"] == uninterrupted[2]["losses"]
    assert all(torch.equal(value, uninterrupted[2]["weights"][name]) for name, value in result["weights"].items())
    assert not (tmp_path / "resume").exists()

    on_one = launch(1, tmp_path / "one.pt", "--resume-dir", str(tmp_path / "resume-copy"))
    assert on_one.returncode == 0, on_one.stdout + on_one.stderr
    result = torch.load(tmp_path / "one.pt", weights_only=True)
    assert result["world"] == 1
    for name, value in uninterrupted[1]["weights"].items():
        torch.testing.assert_close(result["weights"][name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_both_ranks_at_one_step_with_75(tmp_path):
    out, started = tmp_path / "killed.pt", tmp_path / "started"
    run = launch(2, out, "--resume-dir", str(tmp_path / "resume"), "--step-sleep", "0.5", "--started", str(started),
                 wait=False)
    deadline = time.monotonic() + 600
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), "the ranks never reached their third step"
    run.send_signal(signal.SIGTERM)  # what SLURM sends at the time limit
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 75, output
    step = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)["step"]
    assert 3 <= step < STEPS
    assert output.count(f"stopped at step {step}/{STEPS}") == 2  # both ranks, at the same step
