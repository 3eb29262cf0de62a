"""The plan command: what a profile would request per rule, and the GPU-hours."""

from pathlib import Path

from workflow_scripts.slurm_plan import critical_path, format_chain, format_plan, local_rule_names, parse_dry_run, plan_by_rule

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
