"""Finetuning: one rule per member family; wildcards show each member's structure.

A member's model trained on ``train`` feeds the stacker; its twin trained on ``trainval`` feeds the
sidecar. Cascade members of pseudo-label round r > 0 train on train plus the pseudo-labels of round r.

The five rules share one shape: finetune_cascade is written out, the others are ``use rule ... with:``
copies naming their family's inputs, paths, resources and params. ``with:`` cannot change ``shell:``, so
the command is generic: the CLI comes from ``params.cli`` and ``--encoder-ckpt`` from
``params.encoder`` (empty from scratch); finetune_params(family) in common.smk builds them. Overridden
``resources:`` replace the base rule's whole block; overridden ``params:`` replace it key by key.
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
        **training_resources("finetune_cascade"),
    params:
        **finetune_params("cascade"),
    shell:
        "python -m {params.cli} --data {params.data}{params.encoder} {params.member} --fit {wildcards.fit} --out {output.ckpt} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"


use rule finetune_cascade as finetune_mae2d with:
    input:
        unpack(finetune_inputs("mae2d")),
    output:
        ckpt=f"{R}/models/mae2d-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/mae2d-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/mae2d-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/mae2d-{{name}}/{{fit}}.tsv"
    resources:
        **training_resources("finetune_mae2d"),
    params:
        **finetune_params("mae2d"),


use rule finetune_cascade as finetune_videomae with:
    input:
        unpack(finetune_inputs("videomae")),
    output:
        ckpt=f"{R}/models/videomae-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/videomae-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/videomae-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/videomae-{{name}}/{{fit}}.tsv"
    resources:
        **training_resources("finetune_videomae"),
    params:
        **finetune_params("videomae"),


use rule finetune_cascade as finetune_jepa with:
    input:
        unpack(finetune_inputs("jepa")),
    output:
        ckpt=f"{R}/models/jepa-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/jepa-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/jepa-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/jepa-{{name}}/{{fit}}.tsv"
    resources:
        **training_resources("finetune_jepa"),
    params:
        **finetune_params("jepa"),


use rule finetune_cascade as finetune_scratch with:
    input:
        unpack(finetune_inputs("scratch")),
    output:
        ckpt=f"{R}/models/scratch-{{name}}/{{fit}}.pt",
        metrics=f"{R}/models/scratch-{{name}}/{{fit}}-metrics.json",
    log:
        f"{LOGS}/finetune/scratch-{{name}}/{{fit}}.log",
    benchmark:
        f"{BENCH}/finetune/scratch-{{name}}/{{fit}}.tsv"
    resources:
        **training_resources("finetune_scratch"),
    params:
        **finetune_params("scratch"),
