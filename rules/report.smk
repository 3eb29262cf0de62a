"""Report assets for ``snakemake --report``: accuracies, cascade table, confusion matrices, stacker weights."""


rule report_assets:
    input:
        unpack(final_ensemble_inputs()),
        stacker_report=f"{R}/ensemble/stacker/report.json",
        weights=f"{R}/ensemble/stacker/weights.npz",
        oof_probs=f"{R}/ensemble/stacker/train-val.npz",
        baseline=baseline_cache("val"),
    output:
        accuracies=report(
            f"{R}/report/accuracies.csv",
            caption="../report/accuracies.rst",
            category="Accuracy",
        ),
        held_out=report(
            f"{R}/report/held_out.csv",
            caption="../report/held_out.rst",
            category="Accuracy",
        ),
        pseudo_rounds=report(
            f"{R}/report/pseudo_rounds.csv",
            caption="../report/pseudo_rounds.rst",
            category="Cascade",
        ),
        summary=f"{R}/report/summary.json",
        cascade_csv=f"{R}/report/cascade_table.csv",
        cascade=report(
            f"{R}/report/cascade_table.html",
            caption="../report/cascade_table.rst",
            category="Cascade",
        ),
        confusion=report(
            f"{R}/report/confusion.png",
            caption="../report/confusion.rst",
            category="Figures",
        ),
        weights=report(
            f"{R}/report/stacker_weights.png",
            caption="../report/stacker_weights.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/report/report_assets.log",
    conda:
        CONDA_ENV
    params:
        code=stage_fingerprint("whatnext.analysis.report_assets"),
        cache_dir=cache_dir,
        data=data_dir,
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "python -m whatnext.analysis.report_assets --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --stacker-report {input.stacker_report} --weights {input.weights} --oof-probs {input.oof_probs} --baseline {input.baseline} --out-dir {params.out_dir} > {log} 2>&1"


rule efficiency_report:
    """Per rule, requested vs used time, memory and CPU, GPU use and the next run's limits (not in ``all``:
    run it after the graph with the same flags, then ``snakemake --report report.html all efficiency_report``).
    """
    input:
        final_outputs(),
    output:
        table=report(
            f"{R}/report/efficiency.csv",
            caption="../report/efficiency.rst",
            category="Cluster",
        ),
    log:
        f"{LOGS}/report/efficiency.log",
    conda:
        CONDA_ENV
    params:
        run=run_settings_flags,
        snakefile=workflow.main_snakefile,
        results=lambda wildcards, output: os.path.dirname(os.path.dirname(output.table)),
    shell:
        "python -m workflow_scripts.efficiency --results {params.results} --snakefile {params.snakefile} --directory . --csv {output.table} -- {params.run} > {log} 2>&1"
