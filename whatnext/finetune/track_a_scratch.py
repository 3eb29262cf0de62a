"""``python -m whatnext.finetune.track_a_scratch``: train a timm or conv encoder from scratch with a head.

No SSL initialisation: the encoder ``--arch`` (e.g. ``efficientformer_l1``, ``conv3d_tiny``) starts from
random weights, with stronger clip-coherent augmentation than the SSL tracks (smaller crops, more jitter)
and no layer-wise decay. Shared recipe and outputs: :mod:`whatnext.finetune.driver`.
"""

from __future__ import annotations

from pathlib import Path

import click

from whatnext.finetune.augment import STRONG
from whatnext.finetune.driver import classifier_config, data_frame_size, finetune_options, run_finetune
from whatnext.models import list_encoders
from whatnext.runtime.checkpoint import CheckpointError, load_weights_file
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.errors import BadInput
from whatnext.tasks import WHATNEXT


@click.command()
@click.option("--arch", required=True, type=click.Choice(list_encoders()), help="Encoder architecture, randomly initialised.")
@click.option("--img-size", type=click.IntRange(min=8), default=None, help="Input side in px [default: the data's frame size].")
@finetune_options(layer_decay=1.0, drop_path=0.0, crop_min=STRONG.crop_min, jitter=STRONG.jitter)
@training_options(max_epochs=30, batch_size=64, lr=1e-3, warmup_epochs=1.0)
@click.option("--clip-residual/--no-clip-residual", default=False, show_default=True,
              help="The encoder sees each frame minus the clip's mean frame (conv encoders; see "
                   "whatnext.models.encoders_conv).")
@click.option("--init-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Local weights of the per-frame backbone (e.g. a torchvision/timm resnet50 state dict; its fc.* "
                   "is dropped). Nothing is ever downloaded.")
def main(arch, img_size, clip_residual, init_weights, ft, train):
    """Train an encoder from scratch: --fit train (val scored) or trainval (sidecar twin)."""
    task = ft.load_task()
    if task is WHATNEXT and ft.frames not in (None, task.frames):
        raise BadInput(f"--frames {ft.frames}: the whatnext task's clips have {task.frames} frames")
    size = img_size or data_frame_size(ft.data, ft.task)
    encoder = {"encoder": arch, "img_size": size, "num_frames": ft.frames or task.frames}
    if clip_residual:
        encoder["encoder_kwargs"] = {"clip_residual": True}
    config = classifier_config(encoder, ft.head, ft.drop_path, task)
    init = None if init_weights is None else (backbone_state(init_weights), init_weights)
    run_finetune("track_a_scratch", config, ft, train, init_encoder=init)


def backbone_state(path: Path) -> dict:
    """An encoder state dict from a plain backbone weights file: ``fc.*`` (the ImageNet classifier) dropped,
    keys put under ``backbone.`` (the per-frame encoders' attribute). Loaded with weights_only; a file that
    is not plain weights, or whose keys do not fit the encoder, raises naming the file."""
    try:
        state = load_weights_file(path, "backbone weights")
    except CheckpointError as err:
        raise BadInput(str(err)) from None
    if not isinstance(state, dict):
        raise BadInput(f"{path}: not a state dict (a {type(state).__name__})")
    state = state.get("state_dict", state)
    return {(k if k.startswith("backbone.") else f"backbone.{k}"): v for k, v in state.items() if not k.startswith("fc.")}


if __name__ == "__main__":
    main()
