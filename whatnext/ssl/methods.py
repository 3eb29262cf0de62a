"""The registered SSL methods (:class:`~whatnext.ssl.objective.SSLMethod`), by name.

- ``mae2d``: masked autoencoder on the per-frame ViT (random masking per frame, ratio 0.75);
- ``videomae``: masked autoencoder on the tubelet ViT (tube masking, ratio 0.9);
  both take ``--target pixels|residual``, ``--motion-weight W``, ``--norm-pix BOOL``
  (:func:`~whatnext.ssl.mae_models.build_masked_autoencoder`) and ``--masking random|tats`` with the
  ``--tats-*`` settings of the adaptive token sampler (:mod:`whatnext.ssl.tats`);
- ``jepa``: video JEPA on any per-frame encoder (:mod:`whatnext.ssl.jepa`).
"""

from __future__ import annotations

import click
from torch import nn

from whatnext.models import build_encoder, list_encoders
from whatnext.ssl import jepa
from whatnext.ssl.mae_models import ADAPTIVE, TARGETS, MaskedAutoencoder, build_masked_autoencoder
from whatnext.ssl.objective import Setting, SSLMethod
from whatnext.ssl.probe import probe_loss
from whatnext.ssl.tats import DEFAULTS as TATS

RATIO = click.FloatRange(0, 1, min_open=True, max_open=True)
POSITIVE = click.FloatRange(min=0, min_open=True)

TATS_SETTINGS = (
    Setting("masking", click.Choice(ADAPTIVE), "random", "Which patches are masked: the family's random masking "
            "(MAE-2D: per frame; VideoMAE: tubes), or tats: that masking for --tats-warmup-epochs, then a trajectory-"
            "attention sampler trained by PPO on the reconstruction error (same count of masked patches)."),
    Setting("tats_warmup_epochs", click.FloatRange(min=0), TATS["tats_warmup_epochs"],
            "TATS: epochs of random masking before the sampler takes over (fractions allowed)."),
    Setting("tats_record_steps", click.IntRange(min=1), TATS["tats_record_steps"],
            "TATS: MAE steps recorded (sampler frozen) before each sampler training phase (MAE frozen)."),
    Setting("tats_ppo_epochs", click.IntRange(min=1), TATS["tats_ppo_epochs"],
            "TATS: full-batch PPO steps on the recorded episodes per phase."),
    Setting("tats_lr", POSITIVE, TATS["tats_lr"], "TATS: the sampler's AdamW learning rate (constant)."),
    Setting("tats_clip", RATIO, TATS["tats_clip"], "TATS: PPO clip threshold of the importance ratio."),
    Setting("tats_policy_coeff", click.FloatRange(min=0), TATS["tats_policy_coeff"], "TATS: policy loss coefficient."),
    Setting("tats_value_coeff", click.FloatRange(min=0), TATS["tats_value_coeff"], "TATS: value loss coefficient."),
    Setting("tats_entropy_coeff", click.FloatRange(min=0), TATS["tats_entropy_coeff"], "TATS: entropy bonus coefficient."),
)


def _schedule_sampler(model: nn.Module, steps_per_epoch: int) -> None:
    """Tell a TATS sampler the epoch length (its warm-up is in epochs); nothing for random masking."""
    if isinstance(model, MaskedAutoencoder) and model.tats is not None:
        model.tats.schedule(steps_per_epoch)


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
            *TATS_SETTINGS,
        ),
        reset=("decoder", "tats"),  # tats: the TATS sampler, its optimiser and episodes (None under random masking)
        schedule=_schedule_sampler,
    )


METHODS: dict[str, SSLMethod] = {
    method.name: method for method in (_mae("mae2d", 0.75), _mae("videomae", 0.9), jepa.METHOD)
}
