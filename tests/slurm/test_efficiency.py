"""workflow_scripts/efficiency.py: per-rule requested vs used, from a faked sacct and benchmark files."""

from __future__ import annotations

import json

import pytest

from workflow_scripts.efficiency import COLUMNS, efficiency_rows, format_table, parse_sacct, slurm_mb, slurm_seconds

DRY_RUN = """
rule finetune_scratch:
    input: results/data/frames.zip
    output: results/models/scratch-conv3d/train.pt
    log: results/logs/finetune/scratch-conv3d/train.log
    jobid: 3
    benchmark: results/benchmarks/finetune/scratch-conv3d/train.tsv
    reason: Forced execution
    wildcards: name=conv3d, fit=train
    resources: tmpdir=/tmp, mem_mb=64000, mem=64 GB, slurm_partition=gpu, cpus_per_task=8, runtime=45, gpu=1

rule finetune_scratch:
    input: results/data/frames.zip
    output: results/models/scratch-conv2d/train.pt
    jobid: 4
    benchmark: results/benchmarks/finetune/scratch-conv2d/train.tsv
    reason: Forced execution
    wildcards: name=conv2d, fit=train
    resources: tmpdir=/tmp, mem_mb=64000, mem=64 GB, slurm_partition=gpu, cpus_per_task=8, runtime=30, gpu=1

rule stacker:
    input: results/ensemble/members/final.txt
    jobid: 7
    benchmark: results/benchmarks/ensemble/stacker.tsv
    reason: Forced execution
    resources: tmpdir=/tmp, mem_mb=8000, mem=8 GB, slurm_partition=cpu, cpus_per_task=1, runtime=120, gpu=0

rule report_assets:
    jobid: 9
    reason: Forced execution
    resources: tmpdir=/tmp, mem_mb=8000, slurm_partition=cpu, cpus_per_task=1, runtime=120, gpu=0
"""
# What sacct prints for the two finetunes (-P -n -o JobID,State,Elapsed,Timelimit,ReqMem,AllocCPUS,TotalCPU,MaxRSS):
# the allocation line, then its steps, each with its own MaxRSS.
SACCT = """101|COMPLETED|00:30:00|01:00:00|64000M|8|02:00:00|
101.batch|COMPLETED|00:30:00||||00:00:10|204800K
101.0|COMPLETED|00:29:50||||01:59:50|16G
102|TIMEOUT|00:40:00|00:40:00|64000M|8|1-00:00:00|
102.batch|CANCELLED|00:40:00||||00:00:05|1G
"""
BENCHMARK = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n30.6\t0:00:30\t682.59\t1\t1\t1\t0\t0\t5.98\t15.3\n"


def test_slurm_fields():
    assert [slurm_seconds(t) for t in ("00:30:00", "1-02:00:00", "05:01.500", "UNLIMITED", "")] == [1800, 93600, 301.5, None, None]
    assert [slurm_mb(t) for t in ("64000M", "16G", "204800K", "4000Mn", "2000Mc", "")] == [64000, 16384, 200, 4000, 2000, None]


def test_parse_sacct_keeps_the_allocation_fields_and_the_largest_step_rss():
    jobs = parse_sacct(SACCT)
    assert jobs["101"]["State"] == "COMPLETED" and jobs["101"]["TotalCPU"] == "02:00:00" and jobs["101"]["MaxRSS_mb"] == 16384
    assert jobs["102"]["State"] == "TIMEOUT" and jobs["102"]["MaxRSS_mb"] == 1024


@pytest.fixture
def run_folder(tmp_path):
    outcomes = tmp_path / "results" / "logs" / "outcomes" / "finetune_scratch"
    outcomes.mkdir(parents=True)
    for name, job, gpu in (("conv3d", "101", {"samples": 9, "util_mean_pct": 80.0, "util_max_pct": 99.0, "mem_max_mb": 30000.0}),
                           ("conv2d", "102", {"samples": 4, "util_mean_pct": 40.0, "util_max_pct": 60.0, "mem_max_mb": 10000.0})):
        runs = [{"outcome": "completed", "slurm_job_id": "99"}, {"outcome": "completed", "slurm_job_id": job, "gpu": gpu}]
        (outcomes / f"name={name},fit=train.json").write_text(json.dumps({"runs": runs}))
    bench = tmp_path / "results" / "benchmarks" / "ensemble"
    bench.mkdir(parents=True)
    (bench / "stacker.tsv").write_text(BENCHMARK)
    return tmp_path


def test_rows_from_sacct_for_recorded_slurm_jobs_and_from_benchmarks_otherwise(run_folder):
    asked = []

    def fake_sacct(ids):
        asked.append(sorted(ids))
        return parse_sacct(SACCT)

    rows = {row["rule"]: row for row in efficiency_rows(DRY_RUN, run_folder, "results", sacct=fake_sacct)}
    assert asked == [["101", "102"]]  # the last run of each job
    assert set(rows) == {"finetune_scratch", "stacker"}  # report_assets never ran
    ft = rows["finetune_scratch"]
    assert (ft["jobs"], ft["source"], ft["wall_min_median"], ft["wall_min_max"], ft["limit_min_max"]) == ("2", "sacct", "35.0", "40.0", "60")
    assert ft["time_used_pct"] == "100"  # the TIMEOUT job used all of its 40 minutes
    assert (ft["mem_req_mb"], ft["mem_used_mb_max"], ft["mem_used_pct"]) == ("64000", "16384", "26")
    # CPU: (2 h + 24 h) / ((30 + 40) min x 8 CPUs) = 93600 / 33600
    assert ft["cpu_eff_pct"] == f"{100 * 93600 / 33600:.0f}"
    assert (ft["gpu_util_pct"], ft["gpu_mem_mb_max"]) == ("60", "30000")
    assert (ft["next_limit_min_median"], ft["next_limit_min_max"]) == ("38", "45")
    st = rows["stacker"]
    assert (st["source"], st["wall_min_median"], st["limit_min_max"], st["mem_req_mb"], st["mem_used_mb_max"]) == \
        ("benchmark", "0.5", "-", "8000", "683")
    assert st["cpu_eff_pct"] == "50" and st["gpu_util_pct"] == "-" and st["next_limit_min_max"] == "120"
    table = format_table(list(rows.values()))
    assert table.splitlines()[0] == "| " + " | ".join(COLUMNS) + " |" and len(table.splitlines()) == 4


def test_without_accounting_every_measured_job_reads_its_benchmark(run_folder):
    bench = run_folder / "results" / "benchmarks" / "finetune" / "scratch-conv3d"
    bench.mkdir(parents=True)
    (bench / "train.tsv").write_text(BENCHMARK)
    rows = {row["rule"]: row for row in efficiency_rows(DRY_RUN, run_folder, "results", sacct=lambda ids: {})}
    ft = rows["finetune_scratch"]
    assert (ft["jobs"], ft["source"], ft["limit_min_max"], ft["cpus"]) == ("1", "benchmark", "-", "8")
    assert ft["gpu_util_pct"] == "80"  # the outcome file's samples still count


def test_the_report_rule_passes_this_run_s_configs_and_resources_to_its_dry_run(tmp_path):
    """rule efficiency_report (not in ``all``): its nested dry run must see the graph this call sees."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo / "configs" / "smoke.yaml"), "--config", "twins=False",
         "--set-resources", "stacker:mem_mb=3000", "--set-threads", "cache_probs=2", "--", "efficiency_report"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    shell = next(line for line in done.stdout.splitlines() if "workflow_scripts.efficiency" in line)
    assert "--results results/smoke" in shell and "--csv results/smoke/report/efficiency.csv -- " in shell
    tail = shell.split(" -- ", 1)[1]
    assert f"--configfile {repo / 'configs' / 'smoke.yaml'}" in tail and "--config twins=False" in tail
    assert "--set-resources stacker:mem_mb=3000" in tail and "--set-threads cache_probs=2" in tail
