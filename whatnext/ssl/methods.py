"""The registered SSL methods (:class:`~whatnext.ssl.objective.SSLMethod`), by name.

- ``mae2d``: masked autoencoder on the per-frame ViT (random masking per frame, ratio 0.75);
- ``videomae``: masked autoencoder on the tubelet ViT (tube masking, ratio 0.9);
  both take ``--target pixels|residual``, ``--motion-weight W`` and ``--norm-pix BOOL``
  (:func:`~whatnext.ssl.mae_models.build_masked_autoencoder`);
- ``jepa``: video JEPA on any per-frame encoder (:mod:`whatnext.ssl.jepa`).
"""

from __future__ import annotations

import click
from torch import nn

from whatnext.models import build_encoder, list_encoders
from whatnext.ssl import jepa
from whatnext.ssl.mae_models import TARGETS, build_masked_autoencoder
from whatnext.ssl.objective import Setting, SSLMethod
from whatnext.ssl.probe import probe_loss

RATIO = click.FloatRange(0, 1, min_open=True, max_open=True)


def _mae_builder(family: str):
    def build(model_config: dict) -> nn.Module:
        encoder = build_encoder(model_config)
        if getattr(encoder, "family", None) != family:
            known = [name for name in list_encoders() if name.startswith(f"{family}_")]
            raise ValueError(f"encoder {model_config['encoder']!r} is not a {family} encoder; use one of: {', '.join(known)}")
        return build_masked_autoencoder(model_config, encoder=encoder)

    return build


def _mae(family: str, mask_ratio: float) -> SSLMethod:
    """A masked-autoencoder method on the ``family`` encoders: the decoder is reset every generation."""
    return SSLMethod(
        name=family,
        build=_mae_builder(family),
        loss=lambda model, clips: model(clips).loss,
        probe=probe_loss,
        settings=(
            Setting("mask_ratio", RATIO, mask_ratio, "Fraction of patches masked."),
            Setting("target", click.Choice(TARGETS), "pixels", "Reconstruction target of the masked patches: their "
                    "pixels, or their motion residual (each frame minus the clip's mean frame; the encoder still "
                    "sees the frames)."),
            Setting("motion_weight", click.FloatRange(min=0), 0.0, "Weight each masked patch's loss by 1 + W * "
                    "(its motion energy / the batch mean): favours what moves."),
            Setting("norm_pix", bool, True, "Standardise each target patch (MAE's normalised-pixel loss)."),
        ),
        reset=("decoder",),
    )


METHODS: dict[str, SSLMethod] = {
    method.name: method for method in (_mae("mae2d", 0.75), _mae("videomae", 0.9), jepa.METHOD)
}
