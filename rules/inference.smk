"""Probability caches: one per member x fit x split ({cache_dir}/{member}/{fit}-{split}.npz)."""


rule cache_probs:
    input:
        data=data_inputs(),
        ckpt=member_checkpoint,
    output:
        probs=f"{CACHE_DIR}/{{member}}/{{fit}}-{{split}}.npz",
        provenance=f"{CACHE_DIR}/{{member}}/{{fit}}-{{split}}.json",
    log:
        f"{LOGS}/cache_probs/{{member}}/{{fit}}-{{split}}.log",
    benchmark:
        f"{BENCH}/cache_probs/{{member}}/{{fit}}-{{split}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("cache_probs"),
        gpu=gpu_count("cache_probs"),
        mem_mb=gpu_mem_mb("cache_probs"),
    params:
        data=data_dir,
        tta=tta_flags(),
    shell:
        "python -m whatnext.inference.cache_probs --data {params.data} --ckpt {input.ckpt} --split {wildcards.split} --member {wildcards.member} --fit {wildcards.fit} {params.tta} --threads {threads} --out {output.probs} > {log} 2>&1"
