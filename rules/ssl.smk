"""Self-supervised cascade: generation g of an SSL family starts from generation g-1 (gen 1 from its init).

The family's ``method`` (mae2d or videomae) picks the CLI, whatnext.ssl.pretrain_{method}. A job given
more than one GPU by the profile trains data-parallel, one rank per GPU (``ssl_launcher``).
"""


rule ssl_pretrain:
    input:
        unpack(ssl_inputs),
    output:
        encoder=f"{R}/ssl/{{family}}/gen{{gen}}/encoder.pt",
        metrics=f"{R}/ssl/{{family}}/gen{{gen}}/metrics.json",
    log:
        f"{LOGS}/ssl/{{family}}/gen{{gen}}.log",
    benchmark:
        f"{BENCH}/ssl/{{family}}/gen{{gen}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **training_resources("ssl_pretrain"),
    params:
        **ssl_params(),
        data=data_dir,
        img_size=config["img_size"],
        resume=resume_dir,
        launch=ssl_launcher,
        outcome=outcome_path("ssl_pretrain"),
    shell:
        "{params.launch}python -m whatnext.ssl.pretrain_{params.method} --data {params.data} --arch {params.arch} --img-size {params.img_size} {params.init} --out {output.encoder} --metrics {output.metrics} {params.train} --micro-batch {resources.micro_batch} --threads {threads} --resume-dir {params.resume} --outcome {params.outcome} > {log} 2>&1"
