"""Reading Slurm's records and the Snakemake log of a slurm run (the e2e check's evidence)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slurm_records import dumped_logs, expected_comment, parse_run_log, parse_scontrol, shell_parts, time_to_minutes  # noqa: E402

SCONTROL = (
    "JobId=3 JobName=abc UserId=root(0) JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 RunTime=00:01:02 "
    "TimeLimit=00:01:00 Partition=gpu Comment=rule_finetune_scratch_wildcards_conv3d_train TresPerJob=gres:gpu:1\n"
    "JobId=4 JobName=abc JobState=COMPLETED ExitCode=0:0 TimeLimit=04:00:00 Partition=cpu Comment=rule_stacker\n"
    "JobId=5 JobName=abc JobState=COMPLETED TimeLimit=1-00:00:00 Partition=gpu TresPerJob=gres:gpu:a100:2\n"
)

RUN_LOG = """\
[Sun Nov 22 01:45:47 2026]
localrule member_list:
    output: results/smoke/ensemble/members/final.txt
    jobid: 5
    wildcards: list=final
    resources: tmpdir=/tmp, mem_mb=4000, slurm_partition=cpu, runtime=60
[Sun Nov 22 01:47:10 2026]
rule finetune_scratch:
    output: results/smoke/models/scratch-conv3d/train.pt
    jobid: 25
    wildcards: name=conv3d, fit=train
    resources: tmpdir=<TBD>, mem_mb=64000, slurm_partition=gpu, cpus_per_task=8, runtime=1, gpu=1
Shell command: python -m whatnext.finetune.track_a_scratch --fit train
Job 25 has been submitted with SLURM jobid 3 (log: x/3.log).
Error in rule finetune_scratch:
    jobid: 25
Logfile x/3.log:
================================================================================
localrule finetune_scratch:
    jobid: 0
    wildcards: name=conv3d, fit=train
================================================================================
Trying to restart job 25.
[Sun Nov 22 01:48:50 2026]
rule finetune_scratch:
    output: results/smoke/models/scratch-conv3d/train.pt
    jobid: 25
    wildcards: name=conv3d, fit=train
    resources: tmpdir=<TBD>, mem_mb=64000, slurm_partition=gpu, cpus_per_task=8, runtime=4, gpu=1
Job 25 has been submitted with SLURM jobid 8 (log: x/8.log).
"""


def test_scontrol_records_give_partition_limit_gpus_state_and_comment():
    rec = parse_scontrol(SCONTROL)[3]
    assert (rec.partition, rec.time_limit_min, rec.gpus, rec.state) == ("gpu", 1, 1, "FAILED")
    assert rec.comment == "rule_finetune_scratch_wildcards_conv3d_train"


def test_a_job_without_gpus_has_zero_and_a_typed_request_counts():
    records = parse_scontrol(SCONTROL)
    assert (records[4].gpus, records[5].gpus) == (0, 2)


def test_time_limits_in_every_slurm_format_become_minutes():
    assert [time_to_minutes(t) for t in ("00:01:00", "04:00:00", "1-00:00:00", "5:00", "00:00:30")] == [1, 240, 1440, 5, 1]


def test_a_retry_is_a_second_submission_with_its_own_resources():
    run = parse_run_log(RUN_LOG)
    assert [(s.slurm_id, s.attempt, s.resources["runtime"]) for s in run.submissions] == [(3, 1, "1"), (8, 2, "4")]
    assert run.submissions[0].wildcards == {"name": "conv3d", "fit": "train"}
    assert run.submissions[0].shell == "python -m whatnext.finetune.track_a_scratch --fit train"


def test_jobs_inside_a_dumped_failure_log_are_not_jobs_of_the_run():
    run = parse_run_log(RUN_LOG)
    assert run.local_jobs == [("member_list", {"list": "final"})]
    assert run.remote_jobs == {25}


def test_expected_comment_joins_the_wildcard_values_as_the_plugin_does():
    assert expected_comment("finetune_scratch", {"name": "conv3d", "fit": "train"}) == "rule_finetune_scratch_wildcards_conv3d_train"
    assert expected_comment("stacker", {}) == "rule_stacker"


def test_shell_line_splits_into_argv_and_log():
    argv, log = shell_parts("python -m whatnext.ssl.pretrain_mae2d --out a.pt  --seed 3 > logs/ssl.log 2>&1")
    assert argv == ["python", "-m", "whatnext.ssl.pretrain_mae2d", "--out", "a.pt", "--seed", "3"] and log == "logs/ssl.log"


def test_dumped_logs_of_one_file_are_collected_and_others_ignored():
    text = ("Logfile logs/a.log:\n" + "=" * 80 + "\nstopped at step 5\n" + "=" * 80 + "\n"
            "Logfile logs/b.log:\n" + "=" * 80 + "\nother\n" + "=" * 80 + "\n")
    assert dumped_logs(text, "logs/a.log") == "stopped at step 5\n"


def test_memory_fields_in_mb():
    from slurm_records import memory_to_mb

    assert [memory_to_mb(t) for t in ("350M", "1400M", "2G", "1.5G", "64000")] == [350, 1400, 2048, 1536, 64000]
