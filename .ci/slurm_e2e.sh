#!/usr/bin/env bash
# The SLURM part of CI (issue 7), from the repository root on a machine where we are root:
#   1. the plan of the paper graph under profiles/slurm (a dry run: no cluster needed);
#   2. a real single-node Slurm (workflow_scripts/local_slurm.sh: installs Debian's slurm and munge,
#      starts the daemons, stops them and removes the config on exit) running the smoke graph through
#      sbatch, checked against Slurm's own records by tests/slurm/e2e_slurm.py (its last line:
#      "slurm_e2e: N passed, M failed"). SLURM_E2E_TIMEOUT_S bounds the snakemake run (default 1200 s).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
python -m workflow_scripts.slurm_plan --profile profiles/slurm --configfile configs/paper.yaml
echo "slurm plan of the paper graph: $((SECONDS - start)) s"
workflow_scripts/local_slurm.sh run -- python tests/slurm/e2e_slurm.py --timeout-s "${SLURM_E2E_TIMEOUT_S:-1200}"
