"""bench/gpu_check.py --dry on the CPU: its TSVs, and benchmark files the SLURM time limits read back."""

from __future__ import annotations

import csv
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_scripts.time_limits import BENCHMARK_PATTERNS, benchmark_seconds_per_unit

REPO = Path(__file__).resolve().parents[2]
RULES = ("ssl_pretrain", "finetune_cascade", "finetune_mae2d", "finetune_videomae", "finetune_scratch", "cache_probs")


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def gpu_check(out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(out), *flags],
                          env=os.environ | {"PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    done = gpu_check(out, "--dry", "--print-hours")
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


@pytest.mark.slow
def test_every_rule_is_measured_at_each_precision(dry_run):
    out, _ = dry_run
    rows = read_tsv(out / "gpu_check.tsv")
    measured = [r for r in rows if r["status"] == "ok" and "micro" not in r["precision"]]
    assert {r["rule"] for r in measured} == set(RULES)
    assert sorted({r["precision"] for r in measured}) == ["bf16", "fp32"]
    assert len(measured) == 2 * 8  # 3 SSL families + 4 finetune tracks + cache_probs, at two precisions
    for row in measured:
        assert float(row["steps_per_s"]) > 0 and float(row["clips_per_s"]) > 0 and float(row["peak_mem_mb"]) > 0
        assert 0 <= float(row["loader_share"]) < 1
    ddp = [r for r in rows if "DDP" in r["precision"]]
    assert len(ddp) == 1 and ddp[0]["status"].startswith("skipped")


@pytest.mark.slow
def test_the_micro_batch_row_matches_the_whole_batch_step_and_retries_through_a_recorded_oom(dry_run):
    """--dry: passes of 1 clip against the batch of 4, then a cap of 2 clips a pass: the whole batch runs out,
    is recorded as cuda_oom at 4, and the retry policy's micro-batch of 2 completes the run."""
    out, _ = dry_run
    row = next(r for r in read_tsv(out / "gpu_check.tsv") if r["precision"] == "auto (micro-batch)")
    assert row["status"] == "ok" and row["rule"] == "finetune_cascade"
    assert float(re.search(r"\|grad diff\|/\|grad\| (\S+),", row["note"])[1]) < 1e-5
    assert row["note"].endswith("4 oom at step 0 (recorded: cuda_oom 4), 2 ok from step 0 (recorded: completed)")


@pytest.mark.slow
def test_benchmark_files_are_read_by_the_time_limits_as_the_measured_rate(dry_run):
    out, _ = dry_run
    rows = read_tsv(out / "gpu_check.tsv")
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()) | {"results": str(out)}
    from whatnext.data.class_table import load_class_table
    from whatnext.data.synth import class_counts

    counts = {split: sum(c) for split, c in class_counts(load_class_table(), 1.0).items()}
    files = sorted(p.relative_to(out / "benchmarks").as_posix() for p in (out / "benchmarks").rglob("*.tsv"))
    assert len(files) == 8
    for rule in RULES:
        mine = [f for f in files if re.fullmatch(BENCHMARK_PATTERNS[rule], f)]
        assert mine, rule
        rates = [float(r["s_per_unit"]) for r in rows if r["rule"] == rule and r["precision"] == "fp32"]
        assert benchmark_seconds_per_unit(rule, config, counts) == pytest.approx(statistics.median(rates), rel=1e-4)
        header = read_tsv(out / "benchmarks" / mine[0])[0]
        assert list(header)[:2] == ["s", "h:m:s"] and header["measured_by"] == "bench/gpu_check.py"


@pytest.mark.slow
def test_print_hours_compares_the_plan_with_the_measurements(dry_run):
    out, stdout = dry_run
    table = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| rule | jobs | planning GPU-h")
    rules = {line.split("|")[1].strip(): line for line in table[2:]}
    assert set(rules) == set(RULES) | {"total"}
    assert rules["ssl_pretrain"].split("|")[2].strip() == "18"  # 10 + 4 + 4 generations of the paper config
    again = gpu_check(out, "--dry", "--hours-only")
    assert again.returncode == 0 and [line for line in again.stdout.splitlines() if line.startswith("| ")] == table
