"""The slurm profile maps every rule of the workflow with the plugin's own resource names."""

from pathlib import Path

import yaml

from workflow_scripts.slurm_plan import local_rule_names
from workflow_scripts.time_limits import GOVERNED_RULES, check_profile_rules, workflow_rule_names

REPO = Path(__file__).resolve().parents[2]
PLUGIN_NAMES = {"slurm_partition", "gpu", "gpu_model", "runtime", "mem_mb", "cpus_per_task", "slurm_account"}


def profile(folder=REPO / "profiles" / "slurm"):
    return yaml.safe_load((folder / "config.yaml").read_text())


def test_every_submitted_rule_of_the_workflow_is_mapped():
    unmapped = workflow_rule_names(REPO) - local_rule_names(REPO) - {"all"} - set(profile()["set-resources"])
    assert not unmapped


def test_profile_names_only_rules_of_the_workflow():
    check_profile_rules(profile()["set-resources"], REPO)


def test_only_resource_names_the_plugin_understands():
    used = set(profile()["default-resources"]).union(*map(set, profile()["set-resources"].values()))
    assert used <= PLUGIN_NAMES, used - PLUGIN_NAMES


def test_gpu_rules_get_one_gpu_on_the_gpu_partition_and_their_runtime_from_time_limits():
    for rule in GOVERNED_RULES:
        spec = profile()["set-resources"][rule]
        assert (spec["slurm_partition"], spec["gpu"], "runtime" in spec) == ("gpu", 1, False), rule


def test_cpu_rules_ask_for_no_gpu_and_a_fixed_runtime():
    for rule, spec in profile()["set-resources"].items():
        if rule not in GOVERNED_RULES:
            assert (spec["gpu"], spec["slurm_partition"]) == (0, "cpu") and spec["runtime"] > 0, rule


def test_ci_profile_changes_no_rule_mapping():
    ci = profile(REPO / "tests" / "slurm" / "ci_profile")
    assert "set-resources" not in ci and "default-resources" not in ci
