"""Pseudo-label rounds: round r's labels come from the stacker over the members of rounds < r."""


rule pseudo_label:
    input:
        unpack(pseudo_inputs),
    output:
        f"{R}/pseudo/round{{round}}.csv",
    log:
        f"{LOGS}/pseudo/round{{round}}.log",
    benchmark:
        f"{BENCH}/pseudo/round{{round}}.tsv"
    conda:
        CONDA_ENV
    params:
        cache_dir=cache_dir,
        data=data_dir,
    shell:
        "python -m whatnext.ensemble.pseudo_label --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output} > {log} 2>&1"
