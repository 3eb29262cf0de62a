"""The plan command: what a profile would request per rule, and the GPU-hours."""

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_scripts.slurm_plan import (critical_path, format_chain, format_plan, limit_problems, local_rule_names, parse_dry_run,
                                         plan_by_rule, slurm_minutes)

REPO = Path(__file__).resolve().parents[2]

DRY_RUN = """\
rule ssl_pretrain:
    output: a
    jobid: 3
    wildcards: family=cascade, gen=1
    resources: tmpdir=<TBD>, mem_mb=64000, mem=64 GB, slurm_partition=gpu, cpus_per_task=8, runtime=90, gpu=1
rule ssl_pretrain:
    jobid: 4
    wildcards: family=cascade, gen=2
    resources: tmpdir=<TBD>, mem_mb=64000, mem=64 GB, slurm_partition=gpu, cpus_per_task=8, runtime=30, gpu=1
rule stacker:
    jobid: 1
    resources: tmpdir=/tmp, mem_mb=8000, slurm_partition=cpu, cpus_per_task=1, runtime=120, gpu=0
rule all:
    jobid: 0
    resources: tmpdir=/tmp
"""


def test_dry_run_jobs_carry_their_rule_wildcards_and_resources():
    jobs = parse_dry_run(DRY_RUN)
    assert [j.rule for j in jobs] == ["ssl_pretrain", "ssl_pretrain", "stacker", "all"]
    assert jobs[1].wildcards == {"family": "cascade", "gen": "2"}
    assert jobs[0].resources["runtime"] == "90"


def test_gpu_hours_are_gpus_times_the_limits_of_the_rule_s_jobs():
    plans = {p.rule: p for p in plan_by_rule(parse_dry_run(DRY_RUN), {"all"})}
    assert plans["ssl_pretrain"].gpu_hours == (90 + 30) / 60
    assert plans["stacker"].gpu_hours == 0
    assert plans["all"].local and plans["all"].gpu_hours == 0


def test_table_shows_partition_limits_and_the_total():
    table = format_plan(plan_by_rule(parse_dry_run(DRY_RUN), {"all"}))
    ssl_row = next(line for line in table.splitlines() if line.startswith("ssl_pretrain"))
    assert ssl_row.split()[:6] == ["ssl_pretrain", "2", "gpu", "1", "8", "64"]
    assert "0:30-1:30" in ssl_row
    assert table.splitlines()[-1] == "total: 3 slurm jobs, 2.0 GPU-hours at first-attempt limits"


def test_local_rules_are_read_from_the_workflow():
    assert {"all", "member_list"} <= local_rule_names(REPO)


DAG = """digraph snakemake_dag {
	0[label = "all"];
	1[label = "stacker"];
	3[label = "ssl_pretrain\\ngen: 1"];
	4[label = "ssl_pretrain\\ngen: 2"];
	1 -> 0
	3 -> 4
	4 -> 1
	3 -> 1
}"""


def test_critical_path_is_the_longest_chain_of_limits_through_the_dag():
    length, chain = critical_path(parse_dry_run(DRY_RUN), DAG, {"all"})
    assert length == 90 + 30 + 120
    assert [job.jobid for job in chain][:3] == [3, 4, 1]
    assert format_chain(chain, {"all"}) == "ssl_pretrain x2 -> stacker"


# Two group jobs of group "train" (chained a -> b) as Snakemake 9.27 prints them, then a plain CPU job.
GROUPED = """\
[Wed Dec  2 14:30:49 2026] Group job train (jobs in lexicogr. order):

    [Wed Dec  2 14:30:49 2026]
    rule finetune_scratch:
        jobid: 2
        wildcards: name=conv3d, fit=train
        resources: tmpdir=<TBD>, slurm_partition=gpu, runtime=50, gpu=1
    [Wed Dec  2 14:30:49 2026]
    rule cache_probs:
        jobid: 1
        wildcards: member=scratch-conv3d, fit=train
        resources: tmpdir=<TBD>, slurm_partition=gpu, runtime=20, gpu=1
[Wed Dec  2 14:30:49 2026] Group job train (jobs in lexicogr. order):

    [Wed Dec  2 14:30:49 2026]
    rule finetune_scratch:
        jobid: 4
        wildcards: name=conv2d, fit=train
        resources: tmpdir=<TBD>, slurm_partition=gpu, runtime=10, gpu=1
    [Wed Dec  2 14:30:49 2026]
    rule cache_probs:
        jobid: 3
        wildcards: member=scratch-conv2d, fit=train
        resources: tmpdir=<TBD>, slurm_partition=gpu, runtime=20, gpu=1
[Wed Dec  2 14:30:49 2026]
rule stacker:
    jobid: 5
    resources: tmpdir=/tmp, slurm_partition=cpu, runtime=120, gpu=0
"""
GROUPED_DAG = "digraph {\n\t2 -> 1\n\t4 -> 3\n\t1 -> 5\n\t3 -> 5\n}"


def test_grouped_jobs_are_parsed_with_their_group_job():
    jobs = parse_dry_run(GROUPED)
    assert [(j.rule, j.jobid, j.group) for j in jobs] == [
        ("finetune_scratch", 2, "train#1"), ("cache_probs", 1, "train#1"),
        ("finetune_scratch", 4, "train#2"), ("cache_probs", 3, "train#2"), ("stacker", 5, None)]


def test_a_group_job_over_its_partitions_maxtime_is_reported_with_its_rules_and_wildcards():
    problems = limit_problems(parse_dry_run(GROUPED), GROUPED_DAG, set(), {"gpu": 60, "cpu": 300}, None)
    assert problems == [
        "group job train (finetune_scratch[name=conv3d, fit=train], cache_probs[member=scratch-conv3d, fit=train]): "
        "limit 70 min exceeds the MaxTime of partition gpu (60 min); Slurm would keep it pending"]  # 50 + 20 chained; the other group 30


def test_a_job_whose_limit_runs_past_the_deadline_is_reported():
    problems = limit_problems(parse_dry_run(GROUPED), GROUPED_DAG, set(), {}, minutes_left=100)
    assert problems == ["stacker: limit 120 min runs past the deadline (100 min left); it cannot be sure to end before it"]
    assert limit_problems(parse_dry_run(GROUPED), GROUPED_DAG, set(), {"gpu": 70, "cpu": 120}, 120) == []


def test_jobs_of_one_layer_of_a_group_count_once():
    side_by_side = GROUPED_DAG.replace("\t2 -> 1\n", "")  # conv3d's cache no longer waits for its training
    problems = limit_problems(parse_dry_run(GROUPED), side_by_side, set(), {"gpu": 49}, None)
    assert [p.split(":")[0] for p in problems] == ["group job train (finetune_scratch[name=conv3d, fit=train], cache_probs[member=scratch-conv3d, fit=train])"]
    assert "limit 50 min" in problems[0]


@pytest.mark.parametrize("text, minutes", [("30:00", 30), ("1:30:00", 90), ("3-00:00:00", 4320), ("UNLIMITED", None)])
def test_slurm_times_in_minutes(text, minutes):
    assert slurm_minutes(text) == minutes


def test_the_plan_command_exits_1_naming_the_job_over_maxtime(tmp_path):
    """The real plan command on the smoke graph under the slurm profile, with a 5-minute CPU partition."""
    result = subprocess.run([sys.executable, "-m", "workflow_scripts.slurm_plan", "--profile", str(REPO / "profiles" / "slurm"),
                             "--configfile", str(REPO / "configs" / "smoke.yaml"), "--workflow-dir", str(REPO),
                             "--partition-max", "cpu=5"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "synth_data: limit 240 min exceeds the MaxTime of partition cpu (5 min)" in result.stdout
    assert "stacker: limit 120 min exceeds the MaxTime of partition cpu (5 min)" in result.stdout
