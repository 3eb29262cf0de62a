"""The finetuning run shared by the three tracks (mae2d, videomae, scratch).

A track only decides where the classifier's config and initial encoder weights come from
(an SSL encoder checkpoint of its family, or an architecture name trained from scratch) and its
recipe defaults; everything else is here:

- data: ``--fit train`` learns from the training split and scores validation top-1/top-5 once, with
  the final weights; ``--fit trainval`` (the sidecar twin) learns from train + val and scores nothing;
  ``--pseudo CSV`` adds every test clip with its pseudo-label (:mod:`whatnext.finetune.training_sets`);
- stopping by progress: ``--stop-fraction`` (10%) of the labelled training clips, stratified and the same
  for every member of a data dir, is held out as the stop split; after every epoch the model is scored on
  it (``stop_loss``: mean cross-entropy in nats, ``stop_top1``) and training stops after ``--patience``
  epochs without a better ``--stop-on`` score (between ``--min-epochs`` and ``--max-epochs``), keeping the
  best weights (:mod:`whatnext.runtime.early_stopping`). ``val`` is never read while training;
- objective: label-smoothed cross-entropy, plus ``--aux pair_direction`` (weight 0.3) and/or
  ``--aux consistency`` (weight 0.2, two views per clip) (:mod:`whatnext.finetune.losses`);
- optimisation: AdamW with layer-wise learning-rate decay (:mod:`whatnext.finetune.optim`), drop
  path in the encoder, on the shared :class:`~whatnext.runtime.trainer.Trainer` (deadline-aware,
  resumable, deterministic);
- outputs: a ``"classifier"`` checkpoint (``build_model(model_config).state_dict()``; auxiliary heads
  are not part of it) and a metrics JSON (per-epoch loss, lr, clips/s, ``stop_loss``/``stop_top1``;
  summary: epochs run, the stop (best epoch, score, early or not), the stop split's clip ids and per-clip
  correctness of the kept weights, and for ``train`` ``val_top1``/``val_top5``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import click
import numpy as np
import torch
from torch import nn

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.clip_transforms import ClipAugmenter
from whatnext.data.tta import TTAViews
from whatnext.data.epic_dataset import READERS, EpicSegments
from whatnext.data.zip_dataset import ClipDataset, DataFormatError
from whatnext.finetune.augment import Augmentation, train_augmenter
from whatnext.finetune.evaluation import predict_probs, topk_accuracy
from whatnext.finetune.folds import POOLS, Fold
from whatnext.finetune.losses import AUX_WEIGHTS, LOSSES, TaskLoss, pair_direction_loss, symmetric_kl
from whatnext.finetune.optim import layer_decay_groups
from whatnext.finetune.pseudo import PseudoLabelError
from whatnext.finetune.training_sets import (FITS, LabelledClips, ViewedClips, carve_stop_split, compose_training_set,
                                             open_training_set)
from whatnext.models import PairDirectionHead, build_model, list_heads
from whatnext.runtime.checkpoint import file_sha256, load_checkpoint, load_encoder_weights, save_checkpoint
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.early_stopping import MONITORS
from whatnext.runtime.errors import BadInput
from whatnext.runtime.metrics import write_metrics
from whatnext.runtime.seeding import seed_everything
from whatnext.runtime.trainer import Trainer, TrainOptions
from whatnext.tasks import TASKS, WHATNEXT, Task, TaskError, load_task

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FinetuneOptions:
    """The finetuning flags shared by the three track CLIs (see :func:`finetune_options`)."""

    data: Path
    head: str
    fit: str
    out: Path
    metrics: Path
    aux: tuple[str, ...] = ()
    pseudo: Path | None = None
    label_smoothing: float = 0.1
    drop_path: float = 0.1
    layer_decay: float = 0.75
    crop_min: float = 0.35
    jitter: float = 0.3
    stop_fraction: float = 0.1
    stop_on: str = "loss"
    fold: str | None = None
    fold_pool: str = "train"
    task: str = "whatnext"
    frames: int | None = None
    loss: str = "ce"
    focal_gamma: float = 2.0
    reader: str = "auto"

    @property
    def fold_spec(self) -> Fold | None:
        """The fold this member leaves out (:mod:`whatnext.finetune.folds`), or None."""
        return None if self.fold is None else Fold.parse(self.fold, self.fold_pool)

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(crop_min=self.crop_min, jitter=self.jitter)

    def recipe(self) -> dict:
        """The flags that decide the trained weights (not the output paths); the flags of other tasks are left
        out of a whatnext recipe, which is what it was before they existed."""
        skip = {"out", "metrics"} | (set(TASK_FIELDS) if self.task == "whatnext" else set())
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}

    def load_task(self) -> Task:
        """The task of ``--task``, head sizes from the data dir (:func:`whatnext.tasks.load_task`)."""
        try:
            return load_task(self.task, self.data)
        except TaskError as err:
            raise BadInput(str(err)) from None


TASK_FIELDS = ("task", "frames", "loss", "focal_gamma", "reader")


def _check_fold(ctx, param, value):
    if value is not None:
        try:
            Fold.parse(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def finetune_options(**defaults):
    """Click decorator adding the shared finetuning flags; the command receives them as ``ft: FinetuneOptions``.

    Keyword ``defaults`` override per track (e.g. ``layer_decay=1.0, drop_path=0.0`` for scratch).
    """
    d = {f.name: f.default for f in dataclasses.fields(FinetuneOptions)} | defaults
    unit = click.FloatRange(0, 1)
    specs = [
        click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Data dir (frames.zip or frames/, CSVs, norm_stats.json)."),
        click.option("--head", required=True, type=click.Choice(list_heads()), help="Temporal head."),
        click.option("--fit", required=True, type=click.Choice(FITS), help="train: score val per epoch; trainval: the sidecar twin, trained on train + val."),
        click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Classifier checkpoint to write."),
        click.option("--metrics", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Metrics JSON to write."),
        click.option("--aux", multiple=True, type=click.Choice(sorted(AUX_WEIGHTS)), default=d["aux"], help="Auxiliary loss (repeatable): pair_direction (weight 0.3), consistency (weight 0.2)."),
        click.option("--pseudo", type=click.Path(dir_okay=False, path_type=Path), default=d["pseudo"], help="Pseudo-label CSV (video_id,label) of the test clips, added to the training clips."),
        click.option("--label-smoothing", type=unit, default=d["label_smoothing"], show_default=True, help="Label smoothing of the cross-entropy."),
        click.option("--drop-path", type=unit, default=d["drop_path"], show_default=True, help="Stochastic depth rate of the encoder's last block (0 disables)."),
        click.option("--layer-decay", type=click.FloatRange(0, 1, min_open=True), default=d["layer_decay"], show_default=True, help="Layer-wise lr decay per encoder block (1 disables)."),
        click.option("--crop-min", type=click.FloatRange(0, 1, min_open=True), default=d["crop_min"], show_default=True, help="Smallest area fraction of the clip-coherent random resized crop."),
        click.option("--jitter", type=unit, default=d["jitter"], show_default=True, help="Colour jitter strength (brightness, contrast, saturation)."),
        click.option("--stop-fraction", type=click.FloatRange(0, 0.5, max_open=True), default=d["stop_fraction"], show_default=True,
                     help="Share of the labelled training clips held out (stratified, the same for every member) as the stop split; 0: none, train --max-epochs and keep the last weights."),
        click.option("--stop-on", type=click.Choice(sorted(MONITORS)), default=d["stop_on"], show_default=True,
                     help="The stop split's score that decides the stop and the kept weights: loss (cross-entropy) or top1."),
        click.option("--fold", default=d["fold"], callback=_check_fold, help="Fold member: leave out fold I of K (I/K, e.g. 0/5) of the --fold-pool clips."),
        click.option("--fold-pool", type=click.Choice(sorted(POOLS)), default=d["fold_pool"], show_default=True, help="Clips the folds partition: train (train-only fold members) or trainval (train + val)."),
        click.option("--task", type=click.Choice(TASKS), default=d["task"], show_default=True, help="What is predicted (whatnext.tasks): whatnext (33 classes, 4 frames) or epic (verb + noun heads of an EPIC data dir)."),
        click.option("--frames", type=click.IntRange(2), default=d["frames"], help="epic: frames T uniformly spaced over a segment [default: the task's, 16]."),
        click.option("--loss", type=click.Choice(LOSSES), default=d["loss"], show_default=True, help="Per head: ce (label-smoothed), focal (--focal-gamma) or balanced (1/sqrt class frequency)."),
        click.option("--focal-gamma", type=click.FloatRange(0), default=d["focal_gamma"], show_default=True, help="gamma of --loss focal."),
        click.option("--reader", type=click.Choice(READERS), default=d["reader"], show_default=True, help="epic: read rgb_frames/ JPEGs, the MP4s, or frames where extracted (auto)."),
    ]
    names = [f.name for f in dataclasses.fields(FinetuneOptions)]

    def decorate(command):
        @functools.wraps(command)
        def wrapper(**kwargs):
            values = {name: kwargs.pop(name) for name in names}
            values["aux"] = tuple(dict.fromkeys(values["aux"]))  # repeated flags count once, order kept
            return command(ft=FinetuneOptions(**values), **kwargs)

        for option in reversed(specs):
            wrapper = option(wrapper)
        return wrapper

    return decorate


class FinetuneObjective(nn.Module):
    """The module the trainer optimises: the classifier and, with pair direction, its auxiliary head.

    ``loss(batch)``: batch = (frames uint8 [B, T, C, H, W], labels long [B], clip ids, frame sizes) as
    :func:`~whatnext.data.clip_batches.collate_clips` makes it, augmented by ``augment`` into one view per
    clip, or two with consistency (a :class:`~whatnext.data.clip_transforms.ClipAugmenter` of 2 views).
    Returns the scalar training loss (nats): label-smoothed cross-entropy (averaged over views) + 0.3 pair
    direction + 0.2 symmetric KL. ``criterion``: the task's per-head loss (:class:`~whatnext.finetune.losses.TaskLoss`;
    for whatnext the label-smoothed cross-entropy).
    """

    def __init__(self, classifier: nn.Module, aux: tuple[str, ...], criterion: TaskLoss, augment: ClipAugmenter):
        super().__init__()
        self.classifier = classifier
        self.aux = aux
        self.criterion = criterion
        self.augment = augment
        if "pair_direction" in aux:
            steps = classifier.encoder.num_steps
            if steps < 2:
                raise ValueError(f"--aux pair_direction needs at least 2 time steps; encoder {classifier.model_config['encoder']!r} has {steps}")
            self.direction = PairDirectionHead(classifier.encoder.embed_dim)

    def loss(self, batch) -> torch.Tensor:
        frames, labels = self.augment(batch[0], batch[1], batch[3])
        views = frames.shape[1] if "consistency" in self.aux else 1
        clips = frames.flatten(0, 1) if views > 1 else frames
        logits, features = self.classifier.forward_with_features(clips)
        loss = self.criterion(logits, labels.repeat_interleave(views))
        if views > 1:
            per_view = logits.reshape(len(labels), views, -1)
            loss = loss + AUX_WEIGHTS["consistency"] * symmetric_kl(per_view[:, 0], per_view[:, 1])
        if "pair_direction" in self.aux:
            loss = loss + AUX_WEIGHTS["pair_direction"] * pair_direction_loss(self.direction, features)
        return loss


def data_frame_size(data_dir: Path, task: str = "whatnext") -> int:
    """Side (px) of the first training clip's frames: the natural input size when none is given.

    A bad CSV, no training clip or an undecodable first clip raises :class:`BadInput` naming the file."""
    try:
        dataset = EpicSegments(data_dir, "train", num_frames=1) if task == "epic" else ClipDataset(data_dir, "train")
        if len(dataset) == 0:
            raise DataFormatError(f"{dataset.csv_path}: no training clips to take the frame size from")
        return int(dataset.read_frames(0).shape[-1])
    except DataFormatError as err:
        raise BadInput(str(err)) from None


def classifier_config(base: dict, head: str, drop_path: float, task: Task = WHATNEXT) -> dict:
    """A classifier's ``model_config`` from an encoder's config (SSL settings dropped) plus head, drop path and
    the task's outputs (``num_classes``: the sum of its head sizes, the heads side by side)."""
    config = {key: value for key, value in base.items() if key != "ssl"}
    config["head"] = head
    config["num_classes"] = load_class_table().num_classes if task is WHATNEXT else task.num_outputs
    if drop_path > 0:
        config["encoder_kwargs"] = {**config.get("encoder_kwargs", {}), "drop_path_rate": drop_path}
    return config


def open_epic_training_set(ft: FinetuneOptions, num_frames: int) -> LabelledClips:
    """The EPIC segments a member learns from (train, or train + val for the twin); no pseudo-labels or folds."""
    if ft.pseudo is not None or ft.fold is not None:
        raise BadInput(f"{ft.data}: --pseudo and --fold are whatnext-task options, not epic's")
    names = ["train"] + (["val"] if ft.fit == "trainval" else [])
    splits = {name: EpicSegments(ft.data, name, num_frames, reader=ft.reader) for name in names}
    return compose_training_set(splits, ft.fit)


def open_data(ft: FinetuneOptions, size: int, num_classes: int, num_frames: int = 4):
    """(normaliser, all training clips (decoded, not augmented), validation clips with their views or None
    for trainval, the evaluation views); data errors -> :class:`BadInput`."""
    views = TTAViews(size, five_crop=False)
    try:
        normaliser = ClipNormaliser.from_stats_file(ft.data / "norm_stats.json")
        if ft.task == "epic":
            dataset = open_epic_training_set(ft, num_frames)
            val = None if ft.fit == "trainval" else EpicSegments(ft.data, "val", num_frames, transform=views, reader=ft.reader)
            return normaliser, dataset, val, views
        dataset = open_training_set(ft.data, ft.fit, num_classes, ft.pseudo, ft.fold_spec)
        val = None if ft.fit == "trainval" else ClipDataset(ft.data, "val", transform=views)
        return normaliser, dataset, val, views
    except (DataFormatError, PseudoLabelError) as err:
        raise BadInput(str(err)) from None


def split_for_stopping(dataset, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices the model trains on, indices of the stop split) of the composed training set: the stop split
    comes from its labelled clips (train, and val for trainval), never from pseudo-labelled ones."""
    labelled = np.array([source != "pseudo" for source in dataset.sources], dtype=bool)
    stop = carve_stop_split(dataset.clip_ids, dataset.labels, labelled, fraction) if fraction > 0 else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(dataset)), stop), stop


def held_out_scores(probs: np.ndarray, labels: np.ndarray, task: Task = WHATNEXT) -> dict:
    """``stop_loss`` (mean cross-entropy, nats, summed over the task's heads) and ``stop_top1`` (all heads
    right: top-1, or EPIC's action top-1) of probabilities [n, num_outputs] against packed labels [n]."""
    if len(task.heads) == 1:
        picked = probs[np.arange(len(labels)), labels]
        return {"stop_loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()), "stop_top1": topk_accuracy(probs, labels, 1)}
    blocks, truth = task.split(probs), task.decode(np.asarray(labels))
    nll = sum(-np.log(np.clip(blocks[h][np.arange(len(labels)), truth[h]], 1e-12, None)) for h in task.head_names)
    right = np.logical_and.reduce([blocks[h].argmax(1) == truth[h] for h in task.head_names])
    return {"stop_loss": float(nll.mean()), "stop_top1": float(right.mean())}


def majority_share(train_labels: np.ndarray, held_labels: np.ndarray, task: Task) -> float:
    """Top-1 (every head right) on ``held_labels`` of always predicting the training labels' majority per head."""
    train, held = task.decode(np.asarray(train_labels)), task.decode(np.asarray(held_labels))
    return float(np.logical_and.reduce([held[h] == np.bincount(train[h]).argmax() for h in task.head_names]).mean())


def majority_scores(train_labels: np.ndarray, val_labels: np.ndarray, task: Task) -> dict:
    """Validation top-1 of always predicting the training majority: ``val_majority_top1`` (one head) or
    ``val_{head}_majority_top1`` per head."""
    if len(task.heads) == 1:
        return {"val_majority_top1": majority_share(train_labels, val_labels, task)}
    train, val = task.decode(train_labels), task.decode(val_labels)
    return {f"val_{h}_majority_top1": float((val[h] == np.bincount(train[h]).argmax()).mean()) for h in task.head_names}


def finetune_ssl_encoder(track: str, family: str, encoder_ckpt: Path, ft: FinetuneOptions, train: TrainOptions) -> dict:
    """Finetune the encoder of an SSL checkpoint (kind ``"encoder"``) of ``family`` with ``ft.head``.

    A checkpoint of another kind or family raises (``CheckpointError`` / :class:`BadInput`) naming the file.
    """
    ckpt = load_checkpoint(encoder_ckpt, expected_kind="encoder")
    task = ft.load_task()
    frames = ckpt["model_config"].get("num_frames", 4)
    if ft.frames is not None and ft.frames != frames:
        raise BadInput(f"{encoder_ckpt}: its encoder takes {frames} frames, --frames asks for {ft.frames}")
    config = classifier_config(ckpt["model_config"], ft.head, ft.drop_path, task)
    return run_finetune(track, config, ft, train, init_encoder=(ckpt["state_dict"], Path(encoder_ckpt)), family=family)


def ssl_track_command(track: str, family: str | None, summary: str, layer_decay: float = 0.75,
                      drop_path: float = 0.1) -> click.Command:
    """The click command of an SSL-encoder track (``track_a_mae2d``, ``track_a_videomae``, ``track_a_jepa``).

    The tracks share every option and differ only in the encoder family their checkpoint must hold (None:
    any) and the defaults of ``--layer-decay`` and ``--drop-path``.
    """

    @click.command(help=f"{summary}: --fit train (val scored) or trainval (sidecar twin).")
    @click.option("--encoder-ckpt", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help=f"SSL encoder checkpoint (kind 'encoder', family {family or 'any'}).")
    @finetune_options(layer_decay=layer_decay, drop_path=drop_path)
    @training_options(max_epochs=30, batch_size=64, lr=5e-4, warmup_epochs=1.0)
    def main(encoder_ckpt, ft, train):
        finetune_ssl_encoder(track, family, encoder_ckpt, ft, train)

    return main


def run_finetune(track: str, model_config: dict, ft: FinetuneOptions, train: TrainOptions,
                 init_encoder: tuple[dict, Path] | None = None, family: str | None = None) -> dict:
    """Train one member and write its checkpoint and metrics; returns the metrics summary.

    ``init_encoder``: (encoder state dict, the checkpoint it came from) or None (from scratch);
    ``family``: the encoder family the track requires (None: any).
    Raises :class:`BadInput` for bad data, pseudo-labels or configuration; the trainer's
    ``TrainingIncomplete`` propagates (exit 75 through :func:`whatnext.runtime.cli_options.training_options`).
    """
    if train.threads:
        torch.set_num_threads(train.threads)
    seed_everything(train.seed)
    task = ft.load_task()
    source = init_encoder[1] if init_encoder is not None else track
    normaliser, everything, val, views = open_data(ft, model_config["img_size"], model_config["num_classes"],
                                                   model_config.get("num_frames", 4))
    train_idx, stop_idx = split_for_stopping(everything, ft.stop_fraction)
    dataset = torch.utils.data.Subset(everything, train_idx.tolist())
    stop_clips = ViewedClips(everything, stop_idx, views) if len(stop_idx) else None
    try:
        classifier = build_model(model_config)
        augmentation = ft.augmentation if task is WHATNEXT else dataclasses.replace(ft.augmentation, flip_p=0.0)
        augment = train_augmenter(model_config["img_size"], augmentation, normaliser, two_views="consistency" in ft.aux,
                                  mirror_perm=None if task is WHATNEXT else range(task.num_labels))
        criterion = TaskLoss(task, ft.loss, ft.label_smoothing, ft.focal_gamma, everything.labels[train_idx])
        objective = FinetuneObjective(classifier, ft.aux, criterion, augment)
    except ValueError as err:
        raise BadInput(f"{source}: {err}") from None
    if family is not None and classifier.encoder.family != family:
        raise BadInput(f"{source}: holds a {classifier.encoder.family!r} encoder ({model_config['encoder']}); "
                       f"{track} finetunes {family!r} encoders")
    if init_encoder is not None:
        load_encoder_weights(classifier, *init_encoder)
    sources = np.asarray(everything.sources)[train_idx]
    counts = {str(split): int(n) for split, n in zip(*np.unique(sources, return_counts=True))}
    log.info("%s: %s on %s clips %s, stop split %d clips", track, model_config, len(dataset), counts, len(stop_idx))

    def predict(clips) -> np.ndarray:  # in micro-batches when they are set: what fits in training fits here
        return predict_probs(classifier, clips, views, normaliser, batch_size=train.micro_batch or train.batch_size,
                             workers=train.workers, accel=trainer.accel, task=task)[1]

    def stop_score(model) -> dict:
        return held_out_scores(predict(stop_clips), stop_clips.labels, task)

    fingerprint = {
        "track": track,
        "model_config": model_config,
        "recipe": {**ft.recipe(), "data": str(Path(ft.data).resolve())},
        "init_encoder_sha256": None if init_encoder is None else file_sha256(init_encoder[1]),
        "pseudo_sha256": None if ft.pseudo is None else file_sha256(ft.pseudo),
    }
    trainer = Trainer(
        objective, dataset, lambda model, batch: model.loss(batch), train, fingerprint=fingerprint, collate_fn=collate_clips,
        groups=layer_decay_groups(objective, train.lr, train.weight_decay, ft.layer_decay, "classifier.encoder."),
        stop_score=stop_score if stop_clips is not None else None, stop_monitor=ft.stop_on, desc=track,
        stop_chance=None if stop_clips is None else majority_share(everything.labels[train_idx], stop_clips.labels, task),
    )
    trainer.resume_if_possible()
    try:
        result = trainer.fit()
    except DataFormatError as err:  # a clip that fails to decode mid-training
        raise BadInput(str(err)) from None
    summary = {
        "track": track,
        "fit": ft.fit,
        "model_config": model_config,
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in ft.recipe().items()},
        "init_encoder": None if init_encoder is None else str(init_encoder[1]),
        "train_clips": counts,
        "final_loss": result.final_loss,
        "steps": result.steps,
        "epochs_run": len(result.history),
    }
    if stop_clips is not None:
        probs = predict(stop_clips)
        correct = np.logical_and.reduce([block.argmax(1) == truth for block, truth in
                                         zip(task.split(probs).values(), task.decode(stop_clips.labels).values())])
        scores = held_out_scores(probs, stop_clips.labels, task)
        summary |= result.stopping | {"stop_split": {
            "loss": scores["stop_loss"], "top1": scores["stop_top1"], "clips": len(stop_clips),
            "clip_ids": stop_clips.clip_ids, "correct": correct.astype(int).tolist()}}
    if val is not None:
        probs = predict(val)
        summary |= task.metrics(probs, val.labels, prefix="val_") | majority_scores(everything.labels[train_idx], val.labels, task)
    save_checkpoint(ft.out, kind="classifier", model_config=model_config, state_dict=classifier.state_dict(), meta=summary)
    write_metrics(ft.metrics, result.history, **summary)
    trainer.clear_resume_state()
    log.info("%s done: %s", track, {k: v for k, v in summary.items() if k.startswith(("val", "final"))})
    return summary
