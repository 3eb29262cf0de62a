"""Parsing of a dry-run printout (workflow_scripts.graph_table) on a hand-made excerpt."""

import pytest

from workflow_scripts.graph_table import dry_run_jobs, job_counts, members_read_by

PRINTOUT = """Building DAG of jobs...
Job stats:
job            count
-----------  -------
cache_probs        2
stacker            1
total              3

rule cache_probs:
    input: results/data/val.csv
    output: results/probs/scratch-a/train-val.npz
    wildcards: member=scratch-a, fit=train, split=val

localrule stacker:
    input: results/ensemble/members/final.txt, results/probs/scratch-a/train-val.npz, results/probs/cascade-g1-attn-r0/train-test.npz, results/baseline/train-val.npz
    output: results/ensemble/stacker/submission.csv
"""


def test_job_counts_read_the_stats_table_without_total():
    assert job_counts(PRINTOUT) == {"cache_probs": 2, "stacker": 1}


def test_job_counts_without_table_is_an_error():
    with pytest.raises(ValueError, match="no 'Job stats:' table"):
        job_counts("Nothing to be done.")


def test_jobs_keep_their_fields_and_local_rules_count():
    jobs = dry_run_jobs(PRINTOUT)
    assert [j.rule for j in jobs] == ["cache_probs", "stacker"]
    assert jobs[0].fields["wildcards"] == "member=scratch-a, fit=train, split=val"


def test_members_read_by_a_rule_come_from_its_cache_inputs_and_the_baseline_is_not_one():
    assert members_read_by(PRINTOUT, "stacker") == {"scratch-a", "cascade-g1-attn-r0"}
