"""``python -m whatnext.finetune.track_a_videomae``: finetune a tubelet (VideoMAE) SSL encoder with any head.

The encoder comes from an SSL checkpoint of family ``videomae`` (``--encoder-ckpt``; the cascade's
generations). ``--pseudo CSV`` trains on the union of the labelled clips and the pseudo-labelled test
clips (the distillation loop). The rest of the recipe is shared with the other tracks
(:mod:`whatnext.finetune.driver`).
"""

from __future__ import annotations

from pathlib import Path

import click

from whatnext.finetune.driver import finetune_options, finetune_ssl_encoder
from whatnext.runtime.cli_options import training_options


@click.command()
@click.option("--encoder-ckpt", required=True, type=click.Path(dir_okay=False, path_type=Path), help="SSL encoder checkpoint (kind 'encoder', family videomae).")
@finetune_options(layer_decay=0.75, drop_path=0.1)
@training_options(epochs=30, batch_size=64, lr=5e-4, warmup_epochs=1.0)
def main(encoder_ckpt, ft, train):
    """Finetune a tubelet (VideoMAE) encoder: --fit train (val scored) or trainval (sidecar twin)."""
    finetune_ssl_encoder("track_a_videomae", "videomae", encoder_ckpt, ft, train)


if __name__ == "__main__":
    main()
