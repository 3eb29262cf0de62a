"""``python -m whatnext.finetune.track_a_scratch``: train a timm or conv encoder from scratch with a head.

No SSL initialisation: the encoder ``--arch`` (e.g. ``efficientformer_l1``, ``conv3d_tiny``) starts from
random weights, with stronger clip-coherent augmentation than the SSL tracks (smaller crops, more jitter)
and no layer-wise decay. Shared recipe and outputs: :mod:`whatnext.finetune.driver`.
"""

from __future__ import annotations

import click

from whatnext.finetune.augment import STRONG
from whatnext.finetune.driver import classifier_config, data_frame_size, finetune_options, run_finetune
from whatnext.models import list_encoders
from whatnext.runtime.cli_options import training_options


@click.command()
@click.option("--arch", required=True, type=click.Choice(list_encoders()), help="Encoder architecture, randomly initialised.")
@click.option("--img-size", type=click.IntRange(min=8), default=None, help="Input side in px [default: the data's frame size].")
@finetune_options(layer_decay=1.0, drop_path=0.0, crop_min=STRONG.crop_min, jitter=STRONG.jitter)
@training_options(max_epochs=30, batch_size=64, lr=1e-3, warmup_epochs=1.0)
def main(arch, img_size, ft, train):
    """Train an encoder from scratch: --fit train (val scored) or trainval (sidecar twin)."""
    size = img_size or data_frame_size(ft.data)
    config = classifier_config({"encoder": arch, "img_size": size, "num_frames": 4}, ft.head, ft.drop_path)
    run_finetune("track_a_scratch", config, ft, train)


if __name__ == "__main__":
    main()
