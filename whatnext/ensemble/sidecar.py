"""Sidecar: re-inject the validation clips into the final models without leaking their labels.

Every member has a train-only version (``fit=train``, validation held out) and a twin
trained on train + validation (``fit=trainval``). The stacker's weights are calibrated on
the train-only members' out-of-sample ``train-val`` probabilities (nested CV, exactly as
:mod:`whatnext.ensemble.stacker`), then applied, fold model by fold model, to the twins'
``trainval-test`` probabilities. The twins' own validation probabilities (in-sample: they
were trained on those labels) are never read, so no validation label reaches the weights
through a twin; the twins contribute test probabilities only.

``python -m whatnext.ensemble.sidecar --cache-dir DIR --members FILE --data DATA --out submission.csv
[--report R.json --weights W.npz --test-probs P.npz ...]``: the stacker's options. A member
without a usable twin test cache is skipped before fitting (and listed), so the weights are
fitted on exactly the members they are applied to.
"""

from __future__ import annotations

import click

from whatnext.ensemble.stacker import run_stage, stacking_options

TWIN_FIT = "trainval"


@click.command()
@stacking_options
def main(**options) -> None:
    """Fit the stacker on train-only members' val caches; apply it to their train+val twins' test caches."""
    run_stage(TWIN_FIT, **options)


if __name__ == "__main__":
    main()
