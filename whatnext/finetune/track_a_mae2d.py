"""``python -m whatnext.finetune.track_a_mae2d``: finetune an MAE-2D SSL encoder with any temporal head.

The encoder (per-frame ViT with zero-initialised temporal attention) comes from an SSL checkpoint of
family ``mae2d`` (``--encoder-ckpt``); auxiliary losses ``--aux pair_direction`` / ``--aux consistency``,
label smoothing, layer-wise lr decay, drop path and the label-aware flip are shared with the other
tracks (:mod:`whatnext.finetune.driver`).
"""

from __future__ import annotations

from pathlib import Path

import click

from whatnext.finetune.driver import finetune_options, finetune_ssl_encoder
from whatnext.runtime.cli_options import training_options


@click.command()
@click.option("--encoder-ckpt", required=True, type=click.Path(dir_okay=False, path_type=Path), help="SSL encoder checkpoint (kind 'encoder', family mae2d).")
@finetune_options(layer_decay=0.75, drop_path=0.1)
@training_options(epochs=30, batch_size=64, lr=5e-4, warmup_epochs=1.0)
def main(encoder_ckpt, ft, train):
    """Finetune an MAE-2D encoder: --fit train (val scored) or trainval (sidecar twin)."""
    finetune_ssl_encoder("track_a_mae2d", "mae2d", encoder_ckpt, ft, train)


if __name__ == "__main__":
    main()
