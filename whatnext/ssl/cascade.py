"""One generation of the self-supervised cascade; every pretraining CLI is thin over it.

A generation trains an SSL method (:class:`~whatnext.ssl.objective.SSLMethod`: a masked autoencoder, a video
JEPA, ...) on the frames of every clip of the chosen splits (labels unused). With ``--init-encoder PREV.pt``
it loads the previous generation's encoder and nothing else: the method's other modules (``method.reset``:
the MAE decoder, the JEPA predictor and projector) are freshly initialised (from ``--seed``), and the
optimiser and the warmup + cosine schedule start over, opening a fresh cycle (a finished cosine cycle has
~zero learning rate, so merely continuing it would learn little). The driver names no method: the CLI of
method M is ``ssl_command(M)`` over the registry :data:`whatnext.ssl.methods.METHODS`.

Outputs, written only when training completes: ``--out`` an ``"encoder"`` checkpoint
(``model_config`` = the encoder's config with the method's settings in ``ssl``, ``meta`` = family (the
method), generation, parent, final loss) and ``--metrics`` a JSON with the loss per epoch and the method's
probe score of the finished model (for the MAEs the fixed-mask reconstruction loss,
:mod:`whatnext.ssl.probe`: the figure to compare generations by).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import click
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_transforms import ClipAugmenter
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.epic_dataset import EpicSegments
from whatnext.data.zip_dataset import ClipDataset, DataFormatError
from whatnext.runtime.checkpoint import CheckpointError, file_sha256, load_checkpoint, load_state_strict, save_checkpoint
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.errors import BadInput
from whatnext.runtime.distributed import close_process_group, init_process_group
from whatnext.runtime.metrics import write_metrics
from whatnext.runtime.seeding import seed_everything
from whatnext.runtime.trainer import Trainer, TrainOptions
from whatnext.ssl.methods import METHODS
from whatnext.ssl.objective import SSLMethod
from whatnext.tasks import TASKS

log = logging.getLogger(__name__)

NUM_FRAMES = 4
ALL_SPLITS = ("train", "val", "test")
SSL_BETAS = (0.9, 0.95)  # MAE's AdamW betas


FAMILIES = METHODS  # the family tag of a generation's checkpoints is its method's name
ENCODER_IDENTITY = ("encoder", "img_size", "num_frames", "encoder_kwargs")  # what a parent must share


def encoder_config(arch: str, img_size: int, settings: dict, clip_residual: bool = False, num_frames: int = NUM_FRAMES) -> dict:
    """The ``model_config`` of a generation's encoder (``build_encoder`` / ``method.build`` input), the method's
    ``settings`` in ``ssl``; ``clip_residual`` (the encoder sees frames minus their clip mean) is stored in
    ``encoder_kwargs`` and so travels with the checkpoint to finetuning."""
    config = {"encoder": arch, "img_size": img_size, "num_frames": num_frames, "ssl": dict(settings)}
    if clip_residual:
        config["encoder_kwargs"] = {"clip_residual": True}
    return config


def ssl_dataset(data: Path, splits: tuple[str, ...], img_size: int, task: str = "whatnext", num_frames: int = NUM_FRAMES) -> Dataset:
    """Every clip of ``splits`` decoded to ``img_size`` squares (labels not read, all -1; :class:`MethodLoss`
    augments them). Items ``(4 frames uint8 [3, img_size, img_size], label, clip_id)`` for ``collate_clips``;
    task ``epic``: every segment's ``num_frames`` uniformly spaced frames at their stored size."""
    if task == "epic":
        return ConcatDataset([EpicSegments(data, split, num_frames, read_labels=False) for split in splits])
    return ConcatDataset([ClipDataset(data, split, frame_size=img_size, stacked=False, read_labels=False) for split in splits])


def load_parent_encoder(path: Path, method: SSLMethod, config: dict) -> dict:
    """The previous generation's checkpoint, checked to hold an encoder of the same method and architecture."""
    ckpt = load_checkpoint(path, expected_kind="encoder")
    parent_family = ckpt["meta"].get("family")
    if parent_family != method.name:
        raise CheckpointError(f"{path}: holds a {parent_family!r} encoder, cannot seed a {method.name!r} generation")
    parent = {key: ckpt["model_config"].get(key) for key in ENCODER_IDENTITY}
    wanted = {key: config.get(key) for key in ENCODER_IDENTITY}
    if parent != wanted:
        raise CheckpointError(f"{path}: encoder {parent} differs from this generation's {wanted}")
    return ckpt


class MethodLoss:
    """One step's loss: the method's loss on the batch's clips (:func:`~whatnext.data.clip_batches.collate_clips`
    batches), augmented as in MAE (random resized crop and flip, no colour jitter) and normalised with the
    training split's statistics."""

    def __init__(self, method: SSLMethod, img_size: int, normaliser: ClipNormaliser):
        self.method = method
        self.augment = ClipAugmenter(img_size, normaliser)

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        frames, labels, _, frame_sizes = batch
        return self.method.loss(model, self.augment(frames, labels, frame_sizes)[0])


@dataclass
class Generation:
    """A generation ready to train: its model, trainer and provenance."""

    model: nn.Module  # the method's model; ``model.encoder`` is what the cascade carries on
    trainer: Trainer
    normaliser: ClipNormaliser
    config: dict  # the encoder's model_config
    number: int  # 1 for a generation from scratch, parent's + 1 otherwise
    parent: Path | None
    parent_sha256: str | None


def open_generation(method: SSLMethod, *, data: Path, arch: str, img_size: int, init_encoder: Path | None,
                    settings: dict, splits: tuple[str, ...], train: TrainOptions, clip_residual: bool = False,
                    task: str = "whatnext", num_frames: int = NUM_FRAMES) -> Generation:
    """Build the model (seeded; parent encoder loaded, ``method.reset`` modules fresh), data and a fresh
    trainer (step 0)."""
    seed_everything(train.seed)
    config = encoder_config(arch, img_size, settings, clip_residual, num_frames)
    parent = load_parent_encoder(init_encoder, method, config) if init_encoder else None
    model = method.build(config)
    if parent is not None:
        load_state_strict(model.encoder, parent["state_dict"], init_encoder)
    number = (parent["meta"].get("generation", 0) if parent else 0) + 1
    parent_sha = file_sha256(init_encoder) if init_encoder else None
    dataset = ssl_dataset(data, splits, img_size, task, num_frames)
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    trainer = Trainer(
        model, dataset, MethodLoss(method, img_size, normaliser), train, drop_last=True, betas=SSL_BETAS,
        collate_fn=collate_clips, desc=f"{method.name} g{number}",
        fingerprint={"family": method.name, "config": config, "splits": list(splits), "data": str(Path(data).resolve()),
                     "parent_sha256": parent_sha},
    )
    if getattr(model, "tats", None) is not None and trainer.micro_batch < train.batch_size // trainer.ranks.world:
        raise ValueError(f"--micro-batch {train.micro_batch}: TATS counts its warm-up and recorded episodes in forward "
                         "passes, so it needs whole batches (--micro-batch 0)")
    if method.schedule is not None:
        method.schedule(model, trainer.steps_per_epoch)
    return Generation(model, trainer, normaliser, config, number, init_encoder, parent_sha)


def run_generation(method: SSLMethod, *, data: Path, arch: str, img_size: int, init_encoder: Path | None,
                   out: Path, metrics: Path, settings: dict, splits: tuple[str, ...], train: TrainOptions,
                   clip_residual: bool = False, task: str = "whatnext", num_frames: int = NUM_FRAMES) -> dict | None:
    """Train one generation (resuming from ``train.resume_dir`` if a state is there), then write its
    encoder checkpoint and metrics and clear the resume state; returns the metrics summary.

    Raises :class:`~whatnext.runtime.trainer.TrainingIncomplete` when stopped early. With several ranks
    (:mod:`whatnext.runtime.distributed`) every rank trains; rank 0 alone probes and writes the outputs,
    and the others return None.
    """
    gen = open_generation(method, data=data, arch=arch, img_size=img_size, init_encoder=init_encoder,
                          settings=settings, splits=splits, train=train, clip_residual=clip_residual, task=task,
                          num_frames=num_frames)
    gen.trainer.resume_if_possible()
    result = gen.trainer.fit()
    if not gen.trainer.ranks.main:
        return None
    probe_clips = (EpicSegments(data, splits[0], num_frames, read_labels=False) if task == "epic"
                   else ClipDataset(data, splits[0], frame_size=img_size, read_labels=False))
    probe = method.probe(gen.model, probe_clips, gen.normaliser)
    summary = {
        "family": method.name,
        "arch": arch,
        "generation": gen.number,
        "parent": str(gen.parent) if gen.parent else None,
        "parent_sha256": gen.parent_sha256,
        "final_loss": result.final_loss,
        "probe_loss": probe,
        "probe_split": splits[0],
        **settings,
        "splits": list(splits),
        "num_clips": len(gen.trainer.dataset),
        "steps": result.steps,
        "seed": train.seed,
    }
    save_checkpoint(out, kind="encoder", model_config=gen.config, state_dict=gen.model.encoder.state_dict(), meta=summary)
    write_metrics(metrics, result.history, **summary)
    gen.trainer.clear_resume_state()
    log.info("generation %d of %s (%s) done: final loss %.4f, probe %.4f", gen.number, arch, method.name,
             result.final_loss, probe)
    return summary


def _parse_splits(ctx, param, value: str) -> tuple[str, ...]:
    splits = tuple(s.strip() for s in value.split(",") if s.strip())
    bad = [s for s in splits if s not in ALL_SPLITS]
    if bad or not splits or len(set(splits)) != len(splits):
        raise click.BadParameter(f"{value!r}: give distinct splits among {', '.join(ALL_SPLITS)}, comma-separated")
    return splits


def method_options(method: SSLMethod):
    """Click decorator adding the method's settings as flags; the command receives them by setting name."""

    def decorate(command):
        for setting in reversed(method.settings):
            command = click.option(setting.flag, setting.name, type=setting.type, default=setting.default,
                                   show_default=True, help=setting.help)(command)
        return command

    return decorate


def ssl_command(method_name: str) -> click.Command:
    """The click command of one method's pretraining CLI: the shared flags, then the method's settings."""
    method = METHODS[method_name]

    @click.command(help=f"One {method.name} self-supervised cascade generation on every clip's frames; "
                        "exit 75 = incomplete (state in --resume-dir), rerun the same command to resume. "
                        "Started as N ranks by `python -m whatnext.runtime.launch --nproc N --`, it trains data-parallel "
                        "on N GPUs (--batch-size is the global batch).")
    @click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Data dir.")
    @click.option("--arch", required=True, help="Encoder name (of whatnext.models).")
    @click.option("--img-size", required=True, type=click.IntRange(min=8), help="Frame side in pixels.")
    @click.option("--init-encoder", type=click.Path(dir_okay=False, path_type=Path),
                  help="Previous generation's encoder checkpoint: loads the encoder only; fresh "
                       f"{', '.join(method.reset)}, optimiser and schedule.")
    @click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Encoder checkpoint to write.")
    @click.option("--metrics", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Metrics JSON to write.")
    @click.option("--splits", default=",".join(ALL_SPLITS), show_default=True, callback=_parse_splits,
                  help="Splits whose frames are used (no labels read).")
    @click.option("--clip-residual", is_flag=True,
                  help="The encoder sees each frame minus the clip's mean frame (kept in the checkpoint's config).")
    @click.option("--task", type=click.Choice(TASKS), default="whatnext", show_default=True,
                  help="The data's task (whatnext.tasks): epic reads an EPIC data dir's segments.")
    @click.option("--frames", type=click.IntRange(2), default=NUM_FRAMES, show_default=True,
                  help="Frames per clip (epic: T uniformly spaced over a segment; whatnext: 4).")
    @training_options(max_epochs=100, batch_size=64, lr=1.5e-4, weight_decay=0.05, warmup_epochs=5.0)
    @method_options(method)
    def main(data, arch, img_size, init_encoder, out, metrics, splits, clip_residual, task, frames, train, **settings):
        if task == "whatnext" and frames != NUM_FRAMES:
            raise BadInput(f"--frames {frames}: the whatnext task's clips have {NUM_FRAMES} frames")
        try:
            init_process_group(train.device)
            run_generation(method, data=data, arch=arch, img_size=img_size, init_encoder=init_encoder, out=out,
                           metrics=metrics, settings=settings, splits=splits, train=train, clip_residual=clip_residual,
                           task=task, num_frames=frames)
        except (DataFormatError, ValueError) as err:
            raise BadInput(str(err)) from None
        finally:
            close_process_group()

    return main
