"""Resources of GPU rules: the interface the rules call."""

from workflow_scripts.resources import gpu_job_resources


def test_gpu_and_memory_come_from_the_resources_section():
    assert gpu_job_resources("finetune_cascade", {"resources": {"gpu": 1, "mem_mb": 16000}}) == {"gpu": 1, "mem_mb": 16000}
