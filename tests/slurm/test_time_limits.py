"""The deadline-aware runtime model: work estimates, benchmark calibration, the three bounds, errors."""

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from workflow_scripts import time_limits
from workflow_scripts.time_limits import ClusterLimits, TimeLimitError, estimate_minutes, job_units, runtime_minutes, time_limit

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
COUNTS = {"train": 100, "val": 20, "test": 10}


def limits(max_min=None, deadline=None, margin=0.0, headroom=1.0, growth=2.0):
    return ClusterLimits(max_runtime_min=max_min, deadline=deadline, margin_min=margin, headroom=headroom, attempt_growth=growth)


def at_now(rule, wildcards, attempt, config):
    return runtime_minutes(rule, wildcards, attempt, config, now=lambda: NOW)


# ---------------------------------------------------------------- the three bounds


def test_limit_is_the_estimate_times_headroom_when_nothing_else_binds():
    limit = time_limit(10.2, 1, limits(headroom=1.5), NOW)
    assert (limit.minutes, limit.bound) == (16, "estimate")


def test_each_retry_multiplies_the_limit_by_the_attempt_growth():
    assert [time_limit(10, a, limits(growth=3.0), NOW).minutes for a in (1, 2, 3)] == [10, 30, 90]


def test_partition_maximum_caps_the_limit():
    limit = time_limit(100, 1, limits(max_min=72), NOW)
    assert (limit.minutes, limit.bound) == (72, "partition")


def test_deadline_minus_margin_caps_the_limit():
    limit = time_limit(500, 1, limits(max_min=4320, deadline=NOW + timedelta(hours=3), margin=30), NOW)
    assert (limit.minutes, limit.bound, limit.fits_deadline) == (150, "deadline", False)


def test_a_job_longer_than_the_partition_maximum_needs_several_attempts():
    assert time_limit(250, 1, limits(max_min=100), NOW).attempts_needed == 3


# ---------------------------------------------------------------- bad limits


def test_deadline_in_the_past_is_an_error(config):
    config["deadline"] = "2026-11-22T11:00:00+00:00"
    with pytest.raises(TimeLimitError, match="deadline 2026-11-22T11:00:00"):
        at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)


def test_deadline_inside_the_margin_is_an_error(config):
    config["deadline"] = "2026-11-22T12:20:00+00:00"  # 20 min away, margin 30
    with pytest.raises(TimeLimitError, match="margin of 30 min"):
        at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)


def test_deadline_that_is_not_iso_8601_is_an_error(config):
    config["deadline"] = "next friday"
    with pytest.raises(TimeLimitError, match="not an ISO 8601"):
        at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)


def test_partition_maximum_shorter_than_the_start_up_is_an_error(config):
    config["resources"].update(max_runtime_min=1, overhead_min=2)
    with pytest.raises(TimeLimitError, match="partition maximum of 1 min is shorter"):
        at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)


def test_values_given_through_snakemake_config_arrive_as_strings_and_are_read(config):
    config["deadline"] = "None"
    config["resources"].update(max_runtime_min="2", headroom="1", deadline_margin_min="30")
    assert at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config) == 2


def test_a_limit_that_is_not_a_number_is_an_error_naming_the_key(config):
    config["resources"]["max_runtime_min"] = "72h"
    with pytest.raises(TimeLimitError, match="resources.max_runtime_min"):
        at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)


# ---------------------------------------------------------------- the work of a job


def test_ssl_work_is_epochs_times_every_clip(config):
    assert job_units("ssl_pretrain", {"family": "cascade", "gen": "2"}, config, COUNTS) == 10 * 130


def test_finetune_work_counts_its_fit_and_the_pseudo_labelled_test_clips_of_its_round(config):
    r0_train = {"gen": "2", "head": "attn", "round": "0", "fit": "train"}
    r1_trainval = {"gen": "2", "head": "attn", "round": "1", "fit": "trainval"}
    assert job_units("finetune_cascade", r0_train, config, COUNTS) == 4 * 100
    assert job_units("finetune_cascade", r1_trainval, config, COUNTS) == 4 * (100 + 20 + 10)


def test_inference_work_is_the_clips_of_the_fits_splits_times_test_time_views(config):
    train, twin = {"member": "scratch-conv3d", "fit": "train"}, {"member": "scratch-conv3d", "fit": "trainval"}
    assert job_units("cache_probs", train, config, COUNTS) == (20 + 10) * 5 * 2  # val + test, five crops x flip
    assert job_units("cache_probs", twin, config, COUNTS) == 10 * 5 * 2  # test only


def test_the_twins_cache_rule_shares_the_cache_rules_work_model(config):
    twin = {"member": "scratch-conv3d", "fit": "trainval"}
    assert estimate_minutes("cache_probs_twin", twin, config, COUNTS) == estimate_minutes("cache_probs", twin, config, COUNTS)
    assert estimate_minutes("cache_probs_twin", twin, config, COUNTS).source == "ms_per_unit"


def test_estimate_from_config_is_start_up_plus_units_times_cost(config):
    estimate = estimate_minutes("ssl_pretrain", {"family": "cascade", "gen": "1"}, config, COUNTS)
    assert (estimate.minutes, estimate.source) == (pytest.approx(1 + 1.3), "ms_per_unit")


def test_clip_counts_of_challenge_data_are_the_csv_rows(config):
    assert time_limits.clip_counts(config) == COUNTS


def test_runtime_of_a_member_the_config_does_not_define_is_an_error(config):
    with pytest.raises(ValueError, match="cascade-g2-lstm-r0"):
        at_now("finetune_cascade", {"gen": "2", "head": "lstm", "round": "0", "fit": "train"}, 1, config)


def write_benchmark(config, relative, seconds):
    path = Path(config["results"]) / "benchmarks" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\n" + "".join(f"{s}\t0:00:00\t1.0\n" for s in seconds))


def test_benchmarks_of_the_rule_replace_the_configured_cost(config):
    write_benchmark(config, "ssl/cascade/gen1.tsv", [1300 * 0.6])  # 1300 units in 780 s: 0.6 s a unit
    estimate = estimate_minutes("ssl_pretrain", {"family": "cascade", "gen": "2"}, config, COUNTS)
    assert (estimate.minutes, estimate.source) == (pytest.approx(1300 * 0.6 / 60), "benchmark")


def test_benchmark_cost_scales_to_the_job_s_own_work(config):
    write_benchmark(config, "finetune/cascade-g2-attn-r0/train.tsv", [400 * 0.3])  # 0.3 s a unit
    r1 = {"gen": "2", "head": "attn", "round": "1", "fit": "trainval"}
    assert estimate_minutes("finetune_cascade", r1, config, COUNTS).minutes == pytest.approx(520 * 0.3 / 60)


def test_benchmarks_of_other_rules_are_not_evidence(config):
    write_benchmark(config, "finetune/scratch-conv3d/train.tsv", [9999])
    assert estimate_minutes("ssl_pretrain", {"family": "cascade", "gen": "1"}, config, COUNTS).source == "ms_per_unit"


def test_explicit_runtime_by_rule_replaces_the_estimate(config):
    config["resources"]["runtime_min_by_rule"] = {"finetune_scratch": 1}
    wildcards = {"name": "conv3d", "fit": "train"}
    assert [at_now("finetune_scratch", wildcards, a, config) for a in (1, 2)] == [1, 2]


# ---------------------------------------------------------------- reports at graph time


def test_a_job_that_cannot_finish_before_the_deadline_is_reported_with_what_it_needs(config, capsys):
    config["deadline"] = "2026-11-22T13:00:00+00:00"  # 60 min away, margin 30: 30 min left
    config["resources"]["ms_per_unit"]["ssl_pretrain"] = 60 * 40  # 1300 units: 52 min + 1
    assert at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config) == 30
    err = capsys.readouterr().err
    assert "ssl_pretrain[family=cascade, gen=1] needs ~53 min but only 30 min remain" in err


def test_a_job_that_fits_is_not_reported(config, capsys):
    at_now("ssl_pretrain", {"family": "cascade", "gen": "1"}, 1, config)
    assert "time limits" not in capsys.readouterr().err


def test_a_job_longer_than_the_partition_is_reported_with_the_retries_it_needs(config, capsys):
    config["resources"]["max_runtime_min"] = 2
    config["resources"]["ms_per_unit"]["finetune_cascade"] = 600  # 440 units: 4.4 min + 1
    at_now("finetune_cascade", {"gen": "2", "head": "attn", "round": "1", "fit": "train"}, 1, config)
    assert "resumes over 3 attempts (set retries >= 2)" in capsys.readouterr().err


# ---------------------------------------------------------------- the profile and the rules agree


def test_profile_naming_an_unknown_rule_is_an_error():
    with pytest.raises(TimeLimitError, match="unknown rule\\(s\\) finetune_cascde"):
        time_limits.check_profile_rules(["stacker", "finetune_cascde"], REPO)


def test_benchmark_patterns_match_the_benchmark_paths_of_the_rules():
    rules_text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    samples = {"family": "cascade", "gen": "3", "head": "attn", "round": "1", "fit": "train", "name": "m5l",
               "member": "videomae-m5l"}
    for rule, pattern in time_limits.BENCHMARK_PATTERNS.items():
        head = rf"(?:rule {rule}|use rule \w+ as {rule} with):"  # a rule or one derived with use rule
        block = re.search(rf"(?m)^{head}(.*?)(?=^(?:use )?rule |\Z)", rules_text, re.S).group(1)
        template = re.search(r'benchmark:\s*\n\s*f"\{BENCH\}/([^"]+)"', block).group(1)
        path = template.replace("{{", "{").replace("}}", "}").format(**samples)
        assert re.fullmatch(pattern, path), (rule, path)
