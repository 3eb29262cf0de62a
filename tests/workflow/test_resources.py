"""Resources of GPU rules: the interface the rules call."""

from workflow_scripts.resources import gpu_job_resources, runtime_minutes


def test_gpu_and_memory_come_from_the_resources_section():
    assert gpu_job_resources("finetune_cascade", {"resources": {"gpu": 1, "mem_mb": 16000}}) == {"gpu": 1, "mem_mb": 16000}


def test_runtime_grows_with_the_attempt_and_uses_per_rule_estimates():
    config = {"resources": {"runtime_min": 10, "runtime_min_by_rule": {"ssl_pretrain": 90}}}
    assert runtime_minutes("cache_probs", {}, 1, config) == 10
    assert runtime_minutes("ssl_pretrain", {}, 2, config) == 180
