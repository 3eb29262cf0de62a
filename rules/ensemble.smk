"""Ensemble: member lists, stacker, sidecar, calibration, submission, error decomposition."""


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
    output:
        submission=f"{R}/ensemble/stacker/submission.csv",
        report=f"{R}/ensemble/stacker/report.json",
        weights=f"{R}/ensemble/stacker/weights.npz",
    log:
        f"{LOGS}/ensemble/stacker.log",
    benchmark:
        f"{BENCH}/ensemble/stacker.tsv"
    conda:
        CONDA_ENV
    params:
        cache_dir=cache_dir,
        data=data_dir,
        folds=config["ensemble"]["folds"],
    shell:
        "python -m whatnext.ensemble.stacker --cache-dir {params.cache_dir} --members {input.members} --data {params.data} --out {output.submission} --report {output.report} --weights {output.weights} --folds {params.folds} > {log} 2>&1"
