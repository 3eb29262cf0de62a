"""Pseudo-label rounds: round r's labels come from the stacker over the members of rounds < r; a round's
guard keeps a member's previous-round weights when the round lowers its stop-split accuracy beyond noise.
"""


rule pseudo_label:
    input:
        unpack(pseudo_inputs),
    output:
        labels=f"{R}/pseudo/round{{round}}.csv",
        report=f"{R}/pseudo/round{{round}}.json",
    log:
        f"{LOGS}/pseudo/round{{round}}.log",
    benchmark:
        f"{BENCH}/pseudo/round{{round}}.tsv"
    conda:
        CONDA_ENV
    params:
        **ensemble_params(),
        code=stage_fingerprint("whatnext.ensemble.pseudo_label"),
    shell:
        "python -m whatnext.ensemble.pseudo_label --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output.labels} --report {output.report} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"


rule round_guard:
    input:
        unpack(round_guard_inputs),
    output:
        f"{R}/pseudo/guard/{{member}}.json",
    log:
        f"{LOGS}/pseudo/guard/{{member}}.log",
    conda:
        CONDA_ENV
    params:
        code=stage_fingerprint("whatnext.finetune.round_guard"),
        previous=lambda wildcards: previous_round(wildcards.member),
    shell:
        "python -m whatnext.finetune.round_guard --member {wildcards.member} --new {input.new} --previous {input.previous} --previous-member {params.previous} --out {output} > {log} 2>&1"
