"""What a retry's command carries: the micro-batch the retry policy halves after a CUDA out-of-memory error
(the ``micro_batch`` resource, which Snakemake re-evaluates per attempt; params it would not)."""

from __future__ import annotations

import json

from tests.workflow.test_graph import REPO, snakemake

OUTCOMES = "results/smoke/logs/outcomes"


def shells(printout: str) -> dict[tuple[str, str], str]:
    """(rule, wildcards) -> shell command of each job of a ``--dry-run --printshellcmds`` printout."""
    found, rule, wildcards = {}, None, ""
    for line in printout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule, wildcards = line.split()[1].rstrip(":"), ""
        elif line.strip().startswith("wildcards: "):
            wildcards = line.strip().removeprefix("wildcards: ")
        elif line.startswith("Shell command: "):
            found[(rule, wildcards)] = line.removeprefix("Shell command: ")
    return found


def test_the_retry_after_a_cuda_out_of_memory_error_passes_half_the_micro_batch_and_the_others_none(tmp_path):
    oom = tmp_path / OUTCOMES / "finetune_scratch" / "name=conv3d,fit=train.json"
    oom.parent.mkdir(parents=True)
    oom.write_text(json.dumps({"runs": [{"outcome": "cuda_oom", "micro_batch": 32, "slurm_job_id": None,
                                         "detail": "CUDA out of memory at step 3, micro-batch 32 clips"}]}))
    plans = {}
    for attempt in ("1", "2"):
        done = snakemake(tmp_path, REPO / "configs/smoke.yaml", "--dry-run", "--printshellcmds", "--attempt", attempt)
        assert done.returncode == 0, done.stderr + done.stdout
        plans[attempt] = shells(done.stdout)
    oomed = ("finetune_scratch", "name=conv3d, fit=train")
    assert "--batch-size 32" in plans["2"][oomed] and "--micro-batch 16 " in plans["2"][oomed]
    assert "--micro-batch 0 " in plans["1"][oomed]  # a first attempt reads no earlier run
    training = {key: command for key, command in plans["2"].items() if "--resume-dir" in command}
    assert {"ssl_pretrain", "finetune_cascade", "finetune_mae2d", "finetune_scratch"} <= {key[0] for key in training}
    assert all("--micro-batch 0 " in command for key, command in training.items() if key != oomed)
