"""Probability caches: one job per member x fit ({cache_dir}/{member}/{fit}-{split}.npz).

A train-only member's job caches val (the stacker's fit) and test; its train+val twin's job caches test.
The model is loaded once per job, and each cache has its JSON provenance beside it. A member of a
pseudo-label round > 0 caches the weights its round guard keeps (its own, or an earlier round's when the
round lowered the stop-split accuracy beyond noise).
"""


rule cache_probs:
    input:
        unpack(guard_inputs),
        data=data_inputs(),
        ckpt=member_checkpoint,
    output:
        val=f"{CACHE_DIR}/{{member}}/{{fit}}-val.npz",
        val_provenance=f"{CACHE_DIR}/{{member}}/{{fit}}-val.json",
        test=f"{CACHE_DIR}/{{member}}/{{fit}}-test.npz",
        test_provenance=f"{CACHE_DIR}/{{member}}/{{fit}}-test.json",
    log:
        f"{LOGS}/cache_probs/{{member}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/cache_probs/{{member}}/{{fit}}.tsv"
    wildcard_constraints:
        fit="train",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("cache_probs"),
        gpu=gpu_count("cache_probs"),
        mem_mb=gpu_mem_mb("cache_probs"),
    params:
        code=stage_fingerprint("whatnext.inference.cache_probs"),
        data=data_dir,
        tta=tta_flags(),
        caches=cache_flags,
        guard=guard_flags,
        outcome=outcome_path("cache_probs"),
    shell:
        "python -m whatnext.inference.cache_probs --data {params.data} --ckpt {input.ckpt} --member {wildcards.member} --fit {wildcards.fit} {params.caches} {params.tta} {params.guard} --threads {threads} --outcome {params.outcome} > {log} 2>&1"


use rule cache_probs as cache_probs_twin with:
    output:
        test=f"{CACHE_DIR}/{{member}}/{{fit}}-test.npz",
        test_provenance=f"{CACHE_DIR}/{{member}}/{{fit}}-test.json",
    wildcard_constraints:
        fit="trainval",
    resources:
        runtime=gpu_runtime("cache_probs_twin"),
        gpu=gpu_count("cache_probs_twin"),
        mem_mb=gpu_mem_mb("cache_probs_twin"),
