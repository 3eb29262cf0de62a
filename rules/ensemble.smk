"""Ensemble: member lists, stacker, sidecar, calibration, submission, error decomposition (task epic: the
per-head stacker and submission.pt, rule head_stacker).

The stacker fits per-class log-space weights on the members' train-only validation caches (nested CV);
the sidecar applies the same fit to the train+val twins' test caches; the submission is the arg-max of
the last of them.
"""


rule member_list:
    output:
        f"{R}/ensemble/members/{{list}}.txt",
    log:
        f"{LOGS}/ensemble/members-{{list}}.log",
    conda:
        CONDA_ENV
    params:
        ids=lambda wildcards: member_list_ids(wildcards.list),
    run:
        member_table_lib.write_member_list(
            output[0],
            params.ids,
            f"whatnext member list {wildcards.list}, written by the workflow from the config",
        )


rule stacker:
    input:
        unpack(final_ensemble_inputs()),
        baseline=baseline_cache("val"),
    output:
        submission=f"{R}/ensemble/stacker/submission.csv",
        report=f"{R}/ensemble/stacker/report.json",
        weights=f"{R}/ensemble/stacker/weights.npz",
        test_probs=f"{R}/ensemble/stacker/train-test.npz",
        oof_probs=f"{R}/ensemble/stacker/train-val.npz",
    log:
        f"{LOGS}/ensemble/stacker.log",
    benchmark:
        f"{BENCH}/ensemble/stacker.tsv"
    conda:
        CONDA_ENV
    params:
        **ensemble_params(),
        code=stage_fingerprint("whatnext.ensemble.stacker"),
    shell:
        "python -m whatnext.ensemble.stacker --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output.submission} --report {output.report} --weights {output.weights} --test-probs {output.test_probs} --oof-probs {output.oof_probs} --baseline {input.baseline} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"


rule sidecar:
    input:
        unpack(final_ensemble_inputs(with_twins=True)),
    output:
        submission=f"{R}/ensemble/sidecar/submission.csv",
        report=f"{R}/ensemble/sidecar/report.json",
        weights=f"{R}/ensemble/sidecar/weights.npz",
        test_probs=f"{R}/ensemble/sidecar/trainval-test.npz",
    log:
        f"{LOGS}/ensemble/sidecar.log",
    benchmark:
        f"{BENCH}/ensemble/sidecar.tsv"
    conda:
        CONDA_ENV
    params:
        **ensemble_params(),
        code=stage_fingerprint("whatnext.ensemble.sidecar"),
    shell:
        "python -m whatnext.ensemble.sidecar --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output.submission} --report {output.report} --weights {output.weights} --test-probs {output.test_probs} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"


rule submission:
    input:
        data=data_inputs(),
        probs=final_test_probs(),
    output:
        f"{R}/submission.csv",
    log:
        f"{LOGS}/ensemble/submission.log",
    conda:
        CONDA_ENV
    params:
        code=stage_fingerprint("whatnext.inference.submission"),
        data=data_dir,
    shell:
        "python -m whatnext.inference.submission --probs {input.probs} --data {params.data} --out {output} > {log} 2>&1"


rule error_decomposition:
    input:
        data=data_inputs(),
        probs=f"{R}/ensemble/stacker/train-val.npz",
    output:
        summary=f"{R}/analysis/error_decomposition/summary.json",
        table=report(
            f"{R}/analysis/error_decomposition/decomposition.csv",
            caption="../report/error_decomposition.rst",
            category="Error decomposition",
        ),
        pairs=f"{R}/analysis/error_decomposition/confused_pairs.csv",
        confusion=f"{R}/analysis/error_decomposition/confusion.png",
    log:
        f"{LOGS}/analysis/error_decomposition.log",
    conda:
        CONDA_ENV
    params:
        code=stage_fingerprint("whatnext.analysis.error_decomposition"),
        data=data_dir,
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "python -m whatnext.analysis.error_decomposition --probs {input.probs} --data {params.data} --out-dir {params.out_dir} > {log} 2>&1"


rule calibration:
    input:
        unpack(final_ensemble_inputs()),
    output:
        report=f"{R}/ensemble/calibration/report.json",
        table=report(
            f"{R}/ensemble/calibration/table.md",
            caption="../report/calibration.rst",
            category="Accuracy",
        ),
    log:
        f"{LOGS}/ensemble/calibration.log",
    benchmark:
        f"{BENCH}/ensemble/calibration.tsv"
    conda:
        CONDA_ENV
    params:
        **ensemble_params(),
        code=stage_fingerprint("whatnext.ensemble.calibration"),
    shell:
        "python -m whatnext.ensemble.calibration --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --report {output.report} --table {output.table} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"


rule head_stacker:
    input:
        unpack(final_ensemble_inputs()),
    output:
        submission=f"{R}/submission.pt",
        report=f"{R}/ensemble/heads/report.json",
        test_probs=f"{R}/ensemble/heads/train-test.npz",
    log:
        f"{LOGS}/ensemble/head_stacker.log",
    benchmark:
        f"{BENCH}/ensemble/head_stacker.tsv"
    conda:
        CONDA_ENV
    params:
        **ensemble_params(),
        code=stage_fingerprint("whatnext.ensemble.head_stacker"),
        task=TASK,
    shell:
        "python -m whatnext.ensemble.head_stacker --task {params.task} --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output.submission} --report {output.report} --test-probs {output.test_probs} --folds {params.folds} --seed {params.seed} --threads {threads} > {log} 2>&1"
