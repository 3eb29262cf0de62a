"""Deadlines: parsing, SLURM end time via squeue, the stop-time rule and the step-time estimate."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import pytest

from whatnext.runtime.deadline import DeadlineWatch, RunningMedian, parse_deadline, resolve_stop_time, slurm_job_end

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc).timestamp()


def fake_squeue(stdout, returncode=0):
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, stdout=stdout, stderr="")

    return run, calls


def test_parse_deadline_reads_iso8601_with_zone():
    assert parse_deadline("2026-11-22T03:00:00+00:00") == T0
    assert parse_deadline("2026-11-22T04:00:00+01:00") == T0


def test_parse_deadline_rejects_garbage_with_an_example():
    with pytest.raises(ValueError, match="'tomorrow' is not an ISO 8601"):
        parse_deadline("tomorrow")


def test_slurm_job_end_asks_squeue_for_the_job_end_time():
    run, calls = fake_squeue("2026-11-22T03:00:00\n")
    end = slurm_job_end("4242", run=run)
    assert calls == [["squeue", "-h", "-j", "4242", "-o", "%e"]]
    assert end == datetime(2026, 11, 22, 3, 0).timestamp()  # squeue prints local time


@pytest.mark.parametrize("stdout,rc", [("N/A\n", 0), ("", 1), ("Unknown\n", 0)])
def test_slurm_job_end_is_none_when_squeue_cannot_tell(stdout, rc):
    run, _ = fake_squeue(stdout, rc)
    assert slurm_job_end("1", run=run) is None


def test_stop_time_is_the_earliest_limit_minus_the_margin():
    stop = resolve_stop_time("2026-11-22T03:00:00+00:00", 30, 5, now=T0 - 3600, environ={})
    assert stop == T0 - 3600 + 30 * 60 - 5 * 60
    stop = resolve_stop_time("2026-11-22T03:00:00+00:00", 120, 5, now=T0 - 3600, environ={})
    assert stop == T0 - 5 * 60


def test_stop_time_uses_the_slurm_job_end_when_inside_a_job():
    asked = []
    stop = resolve_stop_time(None, None, 2, now=T0 - 3600, environ={"SLURM_JOB_ID": "77"},
                             job_end=lambda job: asked.append(job) or T0)
    assert asked == ["77"] and stop == T0 - 120


def test_no_limit_gives_no_stop_time():
    assert resolve_stop_time(None, None, 5, now=T0, environ={}) is None


def test_running_median_forgets_values_outside_its_window():
    median = RunningMedian(window=3)
    for value in (100.0, 1.0, 2.0, 3.0):
        median.add(value)
    assert median.median() == 2.0


def test_watch_stops_when_step_plus_checkpoint_reaches_the_stop_time():
    now = [0.0]
    watch = DeadlineWatch(stop_at=100.0, clock=lambda: now[0])
    watch.record_step(10.0)
    watch.record_checkpoint(30.0)
    now[0] = 59.0
    assert not watch.next_step_would_cross()  # 41 s left, 40 s needed
    now[0] = 60.0
    assert watch.next_step_would_cross()


def test_watch_without_stop_time_never_stops():
    watch = DeadlineWatch(stop_at=None, clock=lambda: 1e12)
    watch.record_step(1e9)
    assert not watch.next_step_would_cross()
