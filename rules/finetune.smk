"""Finetuning: one rule per member family; wildcards show each member's structure.

A member's model trained on ``train`` feeds the stacker; its twin trained on ``trainval`` feeds the
sidecar. Cascade members of pseudo-label round r > 0 train on train plus the pseudo-labels of round r.
"""


rule finetune_cascade:
    input:
        unpack(finetune_inputs("cascade")),
    output:
        ckpt=f"{R}/models/cascade-g{{gen}}-{{head}}-r{{round}}/{{fit}}.pt",
        metrics=f"{R}/models/cascade-g{{gen}}-{{head}}-r{{round}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/cascade-g{{gen}}-{{head}}-r{{round}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/cascade-g{{gen}}-{{head}}-r{{round}}/{{fit}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("finetune_cascade"),
        gpu=gpu_count("finetune_cascade"),
        mem_mb=gpu_mem_mb("finetune_cascade"),
        micro_batch=gpu_micro_batch("finetune_cascade"),
    params:
        **finetune_params("cascade"),
        code=stage_fingerprint("whatnext.finetune.track_a_videomae"),
        data=data_dir,
        resume=resume_dir,
        outcome=outcome_path("finetune_cascade"),
    shell:
        "python -m whatnext.finetune.track_a_videomae --data {params.data} --encoder-ckpt {input.encoder} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"


rule finetune_mae2d:
    input:
        unpack(finetune_inputs("mae2d")),
    output:
        ckpt=f"{R}/models/mae2d-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/mae2d-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/mae2d-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/mae2d-{{name}}/{{fit}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("finetune_mae2d"),
        gpu=gpu_count("finetune_mae2d"),
        mem_mb=gpu_mem_mb("finetune_mae2d"),
        micro_batch=gpu_micro_batch("finetune_mae2d"),
    params:
        **finetune_params("mae2d"),
        code=stage_fingerprint("whatnext.finetune.track_a_mae2d"),
        data=data_dir,
        resume=resume_dir,
        outcome=outcome_path("finetune_mae2d"),
    shell:
        "python -m whatnext.finetune.track_a_mae2d --data {params.data} --encoder-ckpt {input.encoder} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"


rule finetune_videomae:
    input:
        unpack(finetune_inputs("videomae")),
    output:
        ckpt=f"{R}/models/videomae-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/videomae-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/videomae-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/videomae-{{name}}/{{fit}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("finetune_videomae"),
        gpu=gpu_count("finetune_videomae"),
        mem_mb=gpu_mem_mb("finetune_videomae"),
        micro_batch=gpu_micro_batch("finetune_videomae"),
    params:
        **finetune_params("videomae"),
        code=stage_fingerprint("whatnext.finetune.track_a_videomae"),
        data=data_dir,
        resume=resume_dir,
        outcome=outcome_path("finetune_videomae"),
    shell:
        "python -m whatnext.finetune.track_a_videomae --data {params.data} --encoder-ckpt {input.encoder} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"


rule finetune_jepa:
    input:
        unpack(finetune_inputs("jepa")),
    output:
        ckpt=f"{R}/models/jepa-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/jepa-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/jepa-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/jepa-{{name}}/{{fit}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("finetune_jepa"),
        gpu=gpu_count("finetune_jepa"),
        mem_mb=gpu_mem_mb("finetune_jepa"),
        micro_batch=gpu_micro_batch("finetune_jepa"),
    params:
        **finetune_params("jepa"),
        code=stage_fingerprint("whatnext.finetune.track_a_jepa"),
        data=data_dir,
        resume=resume_dir,
        outcome=outcome_path("finetune_jepa"),
    shell:
        "python -m whatnext.finetune.track_a_jepa --data {params.data} --encoder-ckpt {input.encoder} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"


rule finetune_scratch:
    input:
        unpack(finetune_inputs("scratch")),
    output:
        ckpt=f"{R}/models/scratch-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/scratch-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/scratch-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/scratch-{{name}}/{{fit}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        runtime=gpu_runtime("finetune_scratch"),
        gpu=gpu_count("finetune_scratch"),
        mem_mb=gpu_mem_mb("finetune_scratch"),
        micro_batch=gpu_micro_batch("finetune_scratch"),
    params:
        **finetune_params("scratch"),
        code=stage_fingerprint("whatnext.finetune.track_a_scratch"),
        data=data_dir,
        resume=resume_dir,
        outcome=outcome_path("finetune_scratch"),
    shell:
        "python -m whatnext.finetune.track_a_scratch --data {params.data} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"
