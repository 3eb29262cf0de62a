"""The data dir every stage reads: generated (data.source: synth) or linked from the challenge's files
(task epic: the generated EPIC-like data, or EPIC-KITCHENS-100's annotation files, frames and videos).
"""

if EPIC and config["data"]["source"] == "synth":

    rule epic_synth_data:
        output:
            **DATA_FILES,
        log:
            f"{LOGS}/data/epic_synth.log",
        benchmark:
            f"{BENCH}/data/epic_synth.tsv"
        conda:
            CONDA_ENV
        params:
            code=stage_fingerprint("whatnext.data.epic_synth"),
            out=lambda wildcards, output: os.path.dirname(output.train),
            options=epic_synth_flags(),
        shell:
            "python -m whatnext.data.epic_synth --out {params.out} {params.options} > {log} 2>&1"

elif EPIC:

    rule link_epic_data:
        input:
            **{name: challenge_file(name) for name in CHALLENGE_FILES},
        output:
            **DATA_FILES,
        log:
            f"{LOGS}/data/link.log",
        conda:
            CONDA_ENV
        shell:
            'for f in {input}; do ln -sfn "$(realpath $f)" {DATA}/$(basename $f); done > {log} 2>&1'

elif config["data"]["source"] == "synth":

    rule synth_data:
        output:
            **DATA_FILES,
        log:
            f"{LOGS}/data/synth.log",
        benchmark:
            f"{BENCH}/data/synth.tsv"
        conda:
            CONDA_ENV
        params:
            code=stage_fingerprint("whatnext.data.synth"),
            out=lambda wildcards, output: os.path.dirname(output.train),
            preset=config["data"]["synth"]["preset"],
            scale=config["data"]["synth"]["scale"],
            size=synth_size_flag(),
            seed=config["data"]["synth"]["seed"],
        shell:
            "python -m whatnext.data.synth --out {params.out} --preset {params.preset} --scale {params.scale} {params.size} --seed {params.seed} > {log} 2>&1"

else:

    rule link_challenge_data:
        input:
            frames=challenge_file("frames"),
            train=challenge_file("train.csv"),
            val=challenge_file("val.csv"),
            test=challenge_file("test.csv"),
        output:
            **DATA_FILES,
        log:
            f"{LOGS}/data/link.log",
        conda:
            CONDA_ENV
        shell:
            'for f in {input}; do ln -sfn "$(realpath $f)" {DATA}/$(basename $f); done > {log} 2>&1'


rule norm_stats:
    input:
        **DATA_FILES,
    output:
        f"{DATA}/norm_stats.json",
    log:
        f"{LOGS}/data/norm_stats.log",
    conda:
        CONDA_ENV
    params:
        code=stage_fingerprint("whatnext.data.norm_stats"),
        data=lambda wildcards, output: os.path.dirname(output[0]),
        task=task_flag(),
    shell:
        "python -m whatnext.data.norm_stats --data {params.data} --out {output} {params.task} > {log} 2>&1"
