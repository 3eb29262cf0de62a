"""One generation of the self-supervised cascade; both pretraining CLIs are thin over it.

A generation trains a masked autoencoder (encoder + light decoder, loss on masked patches
only) on the frames of every clip of the chosen splits (labels unused). With
``--init-encoder PREV.pt`` it loads the previous generation's encoder and nothing else:
the decoder is freshly initialised (from ``--seed``), and the optimiser and the warmup +
cosine schedule start over, opening a fresh cycle (a finished cosine cycle has ~zero
learning rate, so merely continuing it would learn little).

Outputs, written only when training completes: ``--out`` an ``"encoder"`` checkpoint
(``model_config`` = the encoder's config, ``meta`` = family, generation, parent, final loss)
and ``--metrics`` a JSON with the reconstruction loss per epoch and the fixed-mask probe loss of
the finished model (:mod:`whatnext.ssl.probe`: the figure to compare generations by).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import click
import torch
from torch.utils.data import ConcatDataset, Dataset

from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_transforms import ClipAugmenter
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset, DataFormatError
from whatnext.models import build_encoder, list_encoders
from whatnext.runtime.checkpoint import CheckpointError, file_sha256, load_checkpoint, load_state_strict, save_checkpoint
from whatnext.runtime.cli_options import BadInput, training_options
from whatnext.runtime.metrics import write_metrics
from whatnext.runtime.seeding import seed_everything
from whatnext.runtime.trainer import Trainer, TrainOptions
from whatnext.ssl.mae_models import MaskedAutoencoder, build_masked_autoencoder
from whatnext.ssl.probe import probe_loss

log = logging.getLogger(__name__)

NUM_FRAMES = 4
ALL_SPLITS = ("train", "val", "test")
SSL_BETAS = (0.9, 0.95)  # MAE's AdamW betas


@dataclass(frozen=True)
class Family:
    """A pretraining family: the ``family`` tag of its encoders and its default mask ratio.

    The masking strategy and decoder shape come from the encoder's ``ssl_defaults``
    (random per frame for mae2d, tube for videomae).
    """

    name: str
    mask_ratio: float


FAMILIES = {"mae2d": Family("mae2d", 0.75), "videomae": Family("videomae", 0.9)}
ENCODER_IDENTITY = ("encoder", "img_size", "num_frames", "encoder_kwargs")  # what a parent must share


def encoder_config(arch: str, img_size: int, mask_ratio: float, clip_residual: bool = False) -> dict:
    """The ``model_config`` of a generation's encoder (``build_encoder`` / ``build_masked_autoencoder`` input);
    ``clip_residual`` (the encoder sees frames minus their clip mean) is stored in ``encoder_kwargs`` and so
    travels with the checkpoint to finetuning."""
    config = {"encoder": arch, "img_size": img_size, "num_frames": NUM_FRAMES, "ssl": {"mask_ratio": mask_ratio}}
    if clip_residual:
        config["encoder_kwargs"] = {"clip_residual": True}
    return config


def ssl_dataset(data: Path, splits: tuple[str, ...], img_size: int) -> Dataset:
    """Every clip of ``splits`` decoded to ``img_size`` squares (labels not read, all -1; :class:`ReconstructionLoss`
    augments them). Items ``(4 frames uint8 [3, img_size, img_size], label, clip_id)`` for ``collate_clips``."""
    return ConcatDataset([ClipDataset(data, split, frame_size=img_size, stacked=False, read_labels=False) for split in splits])


def load_parent_encoder(path: Path, family: Family, config: dict) -> dict:
    """The previous generation's checkpoint, checked to hold an encoder of the same family and architecture."""
    ckpt = load_checkpoint(path, expected_kind="encoder")
    parent_family = ckpt["meta"].get("family")
    if parent_family != family.name:
        raise CheckpointError(f"{path}: holds a {parent_family!r} encoder, cannot seed a {family.name!r} generation")
    parent = {key: ckpt["model_config"].get(key) for key in ENCODER_IDENTITY}
    wanted = {key: config.get(key) for key in ENCODER_IDENTITY}
    if parent != wanted:
        raise CheckpointError(f"{path}: encoder {parent} differs from this generation's {wanted}")
    return ckpt


def build_pretrainer(family: Family, config: dict) -> MaskedAutoencoder:
    """Encoder + freshly initialised decoder for ``config``; raises ``ValueError`` for an encoder of another family."""
    encoder = build_encoder(config)
    if getattr(encoder, "family", None) != family.name:
        known = [name for name in list_encoders() if name.startswith(f"{family.name}_")]
        raise ValueError(f"encoder {config['encoder']!r} is not a {family.name} encoder; use one of: {', '.join(known)}")
    return build_masked_autoencoder(config, encoder=encoder)


class ReconstructionLoss:
    """One step's loss: normalised-pixel MSE on the masked patches of the batch's clips
    (:func:`~whatnext.data.clip_batches.collate_clips` batches), augmented as in MAE (random resized crop
    and flip, no colour jitter) and normalised with the training split's statistics."""

    def __init__(self, img_size: int, normaliser: ClipNormaliser):
        self.augment = ClipAugmenter(img_size, normaliser)

    def __call__(self, model: MaskedAutoencoder, batch) -> torch.Tensor:
        frames, labels, _, frame_sizes = batch
        return model(self.augment(frames, labels, frame_sizes)[0]).loss


@dataclass
class Generation:
    """A generation ready to train: its model, trainer and provenance."""

    model: MaskedAutoencoder
    trainer: Trainer
    normaliser: ClipNormaliser
    config: dict  # the encoder's model_config
    number: int  # 1 for a generation from scratch, parent's + 1 otherwise
    parent: Path | None
    parent_sha256: str | None


def open_generation(family: Family, *, data: Path, arch: str, img_size: int, init_encoder: Path | None,
                    mask_ratio: float, splits: tuple[str, ...], train: TrainOptions, clip_residual: bool = False) -> Generation:
    """Build the model (seeded; parent encoder loaded, decoder fresh), data and a fresh trainer (step 0)."""
    seed_everything(train.seed)
    config = encoder_config(arch, img_size, mask_ratio, clip_residual)
    parent = load_parent_encoder(init_encoder, family, config) if init_encoder else None
    model = build_pretrainer(family, config)
    if parent is not None:
        load_state_strict(model.encoder, parent["state_dict"], init_encoder)
    number = (parent["meta"].get("generation", 0) if parent else 0) + 1
    parent_sha = file_sha256(init_encoder) if init_encoder else None
    dataset = ssl_dataset(data, splits, img_size)
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    trainer = Trainer(
        model, dataset, ReconstructionLoss(img_size, normaliser), train, drop_last=True, betas=SSL_BETAS,
        collate_fn=collate_clips, desc=f"{family.name} g{number}",
        fingerprint={"family": family.name, "config": config, "splits": list(splits), "data": str(Path(data).resolve()),
                     "parent_sha256": parent_sha},
    )
    return Generation(model, trainer, normaliser, config, number, init_encoder, parent_sha)


def run_generation(family: Family, *, data: Path, arch: str, img_size: int, init_encoder: Path | None,
                   out: Path, metrics: Path, mask_ratio: float, splits: tuple[str, ...], train: TrainOptions,
                   clip_residual: bool = False) -> dict:
    """Train one generation (resuming from ``train.resume_dir`` if a state is there), then write its
    encoder checkpoint and metrics and clear the resume state; returns the metrics summary.

    Raises :class:`~whatnext.runtime.trainer.TrainingIncomplete` when stopped early.
    """
    gen = open_generation(family, data=data, arch=arch, img_size=img_size, init_encoder=init_encoder,
                          mask_ratio=mask_ratio, splits=splits, train=train, clip_residual=clip_residual)
    gen.trainer.resume_if_possible()
    result = gen.trainer.fit()
    probe = probe_loss(gen.model, ClipDataset(data, splits[0], frame_size=img_size, read_labels=False), gen.normaliser)
    summary = {
        "family": family.name,
        "arch": arch,
        "generation": gen.number,
        "parent": str(gen.parent) if gen.parent else None,
        "parent_sha256": gen.parent_sha256,
        "final_loss": result.final_loss,
        "probe_loss": probe,
        "probe_split": splits[0],
        "mask_ratio": mask_ratio,
        "splits": list(splits),
        "num_clips": len(gen.trainer.dataset),
        "steps": result.steps,
        "seed": train.seed,
    }
    save_checkpoint(out, kind="encoder", model_config=gen.config, state_dict=gen.model.encoder.state_dict(), meta=summary)
    write_metrics(metrics, result.history, **summary)
    gen.trainer.clear_resume_state()
    log.info("generation %d of %s done: final reconstruction loss %.4f, probe %.4f", gen.number, arch, result.final_loss, probe)
    return summary


def _parse_splits(ctx, param, value: str) -> tuple[str, ...]:
    splits = tuple(s.strip() for s in value.split(",") if s.strip())
    bad = [s for s in splits if s not in ALL_SPLITS]
    if bad or not splits or len(set(splits)) != len(splits):
        raise click.BadParameter(f"{value!r}: give distinct splits among {', '.join(ALL_SPLITS)}, comma-separated")
    return splits


def ssl_command(family_name: str) -> click.Command:
    """The click command of one family's pretraining CLI."""
    family = FAMILIES[family_name]

    @click.command(help=f"One {family.name} self-supervised cascade generation on every clip's frames; "
                        "exit 75 = incomplete (state in --resume-dir), rerun the same command to resume.")
    @click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Data dir.")
    @click.option("--arch", required=True, help=f"Encoder name (a {family.name} encoder of whatnext.models).")
    @click.option("--img-size", required=True, type=click.IntRange(min=8), help="Frame side in pixels.")
    @click.option("--init-encoder", type=click.Path(dir_okay=False, path_type=Path),
                  help="Previous generation's encoder checkpoint: loads the encoder only, fresh decoder/optimiser/schedule.")
    @click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Encoder checkpoint to write.")
    @click.option("--metrics", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Metrics JSON to write.")
    @click.option("--mask-ratio", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=family.mask_ratio,
                  show_default=True, help="Fraction of patches masked.")
    @click.option("--splits", default=",".join(ALL_SPLITS), show_default=True, callback=_parse_splits,
                  help="Splits whose frames are used (no labels read).")
    @click.option("--clip-residual", is_flag=True,
                  help="The encoder sees each frame minus the clip's mean frame (kept in the checkpoint's config).")
    @training_options(epochs=100, batch_size=64, lr=1.5e-4, weight_decay=0.05, warmup_epochs=5.0)
    def main(data, arch, img_size, init_encoder, out, metrics, mask_ratio, splits, clip_residual, train):
        try:
            run_generation(family, data=data, arch=arch, img_size=img_size, init_encoder=init_encoder, out=out,
                           metrics=metrics, mask_ratio=mask_ratio, splits=splits, train=train, clip_residual=clip_residual)
        except (DataFormatError, ValueError) as err:
            raise BadInput(str(err)) from None

    return main
