"""The data dir every stage reads: generated (data.source: synth) or linked from the challenge's files."""

DATA_FILES = {
    "frames": f"{DATA}/{FRAMES_NAME}",
    "train": f"{DATA}/train.csv",
    "val": f"{DATA}/val.csv",
    "test": f"{DATA}/test.csv",
}


if config["data"]["source"] == "synth":

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
    shell:
        "python -m whatnext.data.norm_stats --data {params.data} --out {output} > {log} 2>&1"
