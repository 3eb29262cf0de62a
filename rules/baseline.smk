"""The pixel baseline in every run: logistic regression on 16x16 grey frames and frame differences.

Member-like (probability caches the stacker and the report read like a member's, its own submission)
but never stacked: members whose held-out accuracy does not beat it are flagged in the report.
"""


rule baseline:
    input:
        data=data_inputs(),
    output:
        val=baseline_cache("val"),
        test=baseline_cache("test"),
        submission=f"{BASELINE_DIR}/submission.csv",
        report=f"{BASELINE_DIR}/report.json",
    log:
        f"{LOGS}/baseline/pixel_logreg.log",
    benchmark:
        f"{BENCH}/baseline/pixel_logreg.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=stage_fingerprint("whatnext.baseline.pixel_logreg"),
        data=data_dir,
        out_dir=lambda wildcards, output: os.path.dirname(output.report),
        folds=config["ensemble"]["folds"],
        seed=config["seed"],
    shell:
        "python -m whatnext.baseline.pixel_logreg --data {params.data} --out-dir {params.out_dir} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"
