"""whatnext: the 95-member What Happens Next? ensemble as a Snakemake graph.

    snakemake --profile profiles/local                                # embedded default (config.yaml)
    snakemake --profile profiles/local --configfile configs/paper.yaml
A --configfile replaces config.yaml entirely (configs/*.yaml are complete configs).
"""

from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"


if not FROM_CACHES:

    include: "rules/ssl.smk"
    include: "rules/finetune.smk"
    include: "rules/inference.smk"
    include: "rules/pseudo.smk"


include: "rules/baseline.smk"
include: "rules/ensemble.smk"
include: "rules/report.smk"


localrules:
    all,
    member_list,
    submission,
    efficiency_report,


rule all:
    default_target: True
    input:
        final_outputs(),
