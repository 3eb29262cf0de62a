"""``python -m whatnext.inference.cache_probs``: a member's class probabilities on its splits, cached.

Loads a ``"classifier"`` checkpoint once and, for each ``--split S --out PATH`` pair (repeatable: the
workflow caches val and test of a train-only member in one job), runs it on every clip of S under test-time views
(``--tta five_crop``: four corners and centre of the frames resized by 1/0.875; ``--tta none``: one
centre view; ``--flip`` adds the mirrored views, whose mirror-pair columns (18 <-> 19, from the
class table) are swapped back before the views are averaged) and writes the probability cache
(``ids`` unicode [n] in CSV order, ``probs`` float32 [n, 33]) with its JSON provenance (member,
checkpoint path and SHA-256, tta, flip, split, fit) through
:func:`whatnext.runtime.prob_cache.write_prob_cache`, atomically.

A member of a pseudo-label round > 0 comes with ``--guard`` (:mod:`whatnext.finetune.round_guard`) and
``--candidate MEMBER=CKPT`` for every earlier round: when the guard fell back, the caches hold the kept
member's probabilities under this member's id, and their provenance records the guard (``pseudo_guard``).

``--task epic`` (:mod:`whatnext.tasks`): the data dir is an EPIC one (:mod:`whatnext.data.epic_dataset`), each
segment gives ``--clips`` temporal clips of the checkpoint's T frames (no flipped views: an egocentric
left/right mirror changes what the hands do), each head's softmax is averaged over the clips and views, and the
cache holds the heads side by side (``probs`` [n, verbs + nouns], ``head_sizes``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import click
import torch

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.tta import TTA_KINDS, TTAViews
from whatnext.data.epic_dataset import READERS, ClipViews, EpicSegments
from whatnext.data.zip_dataset import ClipDataset, DataFormatError
from whatnext.finetune.evaluation import predict_probs
from whatnext.finetune.round_guard import kept_checkpoint, parse_candidates
from whatnext.models import build_model
from whatnext.models.factory import DEFAULTS
from whatnext.runtime.checkpoint import CheckpointError, file_sha256, load_checkpoint, load_state_strict
from whatnext.runtime.cli_options import check_device, outcome_option
from whatnext.runtime.distributed import rank_device
from whatnext.runtime.errors import BadInput
from whatnext.runtime.logging_setup import cli_logging
from whatnext.runtime.outcome import recorded
from whatnext.runtime.precision import Acceleration, compile_option, precision_option
from whatnext.runtime.prob_cache import FITS, SPLITS, write_prob_cache
from whatnext.tasks import TASKS, TaskError, load_task

log = logging.getLogger(__name__)
MEMBER_ID = r"^[A-Za-z0-9_.-]+$"


def cache_member_probs(data: Path, ckpt: Path, outputs: dict[str, Path], member: str, fit: str, tta: str, flip: bool,
                       batch_size: int = 32, workers: int = 0, device: str = "cpu", precision: str = "fp32",
                       compile: bool = False, guard: Path | None = None, candidates: dict[str, Path] | None = None,
                       task: str = "whatnext", clips: int = 1, reader: str = "auto") -> list[dict]:
    """Compute and write one probability cache per ``outputs`` item (split -> cache path) from one model load;
    returns their provenances in that order. Errors name the file at fault.

    ``device``, ``precision`` and ``compile`` as the CLI's ``--device`` (``auto``: CUDA if available),
    ``--precision`` and ``--compile`` (:mod:`whatnext.runtime.precision`). ``guard``: a pseudo-label round's
    guard JSON; its kept member's checkpoint (``ckpt`` itself, or one of ``candidates``) is cached.
    """
    ckpt, guarded = (ckpt, None) if guard is None else kept_checkpoint(guard, member, ckpt, candidates or {})
    checkpoint = load_checkpoint(ckpt, expected_kind="classifier")
    config = checkpoint["model_config"]
    try:
        model = build_model(config)
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt}: its model_config cannot be built ({type(err).__name__}: {err})") from None
    load_state_strict(model, checkpoint["state_dict"], ckpt)
    accel = Acceleration(rank_device(device), precision, compile)
    model = accel.prepare(model)
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    epic = task == "epic"
    views = TTAViews((DEFAULTS | config)["img_size"], five_crop=tta == "five_crop", flip=flip and not epic)
    task_spec = load_task(task, data if epic else None)
    if epic and task_spec.num_outputs != config.get("num_classes"):
        raise CheckpointError(f"{ckpt}: has {config.get('num_classes')} outputs, the data's task {task_spec.heads} needs "
                              f"{task_spec.num_outputs}")
    checkpoint_sha256 = file_sha256(ckpt)
    provenances = []
    for split, out in outputs.items():
        if epic:
            dataset = EpicSegments(data, split, (DEFAULTS | config)["num_frames"], clips, transform=views, reader=reader,
                                   task=task_spec)
            merged = ClipViews(views, clips)
        else:
            dataset, merged = ClipDataset(data, split, transform=views), views
        log.info("%s: %d %s clips x %d views with %s; %s", member, len(dataset), split, len(merged.flipped), ckpt, accel.describe())
        ids, probs = predict_probs(model, dataset, merged, normaliser, batch_size=batch_size, workers=workers,
                                   desc=f"{member} {split}", accel=accel, task=task_spec)
        if len(ids) == 0:
            raise DataFormatError(f"{dataset.csv_path}: no clips in split {split!r}")
        provenance = {
            "member": member, "checkpoint": str(ckpt), "checkpoint_sha256": checkpoint_sha256,
            "tta": tta, "flip": flip, "split": split, "fit": fit, "model_config": config, "precision": accel.precision,
        }
        if guarded is not None:
            provenance["pseudo_guard"] = guarded
        if epic:
            provenance |= {"task": task, "heads": dict(task_spec.heads), "clips": clips}
        write_prob_cache(out, ids, probs, provenance, head_sizes=task_spec.sizes if epic else None)
        provenances.append(provenance)
    return provenances


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Data dir (frames, CSVs, norm_stats.json).")
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Classifier checkpoint of the member.")
@click.option("--split", "splits", required=True, multiple=True, type=click.Choice(SPLITS),
              help="Split to predict (repeatable; the n-th --split goes to the n-th --out).")
@click.option("--member", required=True, type=str, help="Member id (recorded in the provenance).")
@click.option("--fit", required=True, type=click.Choice(FITS), help="What the member was trained on (recorded in the provenance).")
@click.option("--tta", type=click.Choice(TTA_KINDS), default="none", show_default=True, help="none: one centre view; five_crop: four corners + centre.")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Also mirrored views, mirror-pair probabilities swapped back.")
@click.option("--out", "outs", required=True, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Cache to write (.npz; provenance beside it as .json), one per --split.")
@click.option("--guard", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pseudo-label round guard JSON (whatnext.finetune.round_guard): cache the kept member's checkpoint.")
@click.option("--candidate", "candidates", multiple=True, metavar="MEMBER=CKPT",
              help="Checkpoint of an earlier round's member the guard may keep (repeatable).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Clips per forward pass.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch intra-op threads.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--device", default="auto", show_default=True, callback=check_device, help="torch device: auto (CUDA if available), cpu, cuda, cuda:1...")
@precision_option()
@compile_option()
@click.option("--task", type=click.Choice(TASKS), default="whatnext", show_default=True, help="The data's task (whatnext.tasks).")
@click.option("--clips", type=click.IntRange(min=1), default=1, show_default=True, help="epic: temporal clips per segment, averaged.")
@click.option("--reader", type=click.Choice(READERS), default="auto", show_default=True, help="epic: rgb_frames/ JPEGs, the MP4s, or frames where extracted.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the log to this file.")
@outcome_option()
def main(data, ckpt, splits, member, fit, tta, flip, outs, guard, candidates, batch_size, threads, workers, device, precision, compile,
         task, clips, reader, log_file, outcome):
    """Cache a member's TTA probabilities on the val and/or test split."""
    if not re.match(MEMBER_ID, member):
        raise BadInput(f"member id {member!r} must match {MEMBER_ID}")
    if len(splits) != len(outs) or len(set(splits)) != len(splits):
        raise click.UsageError(f"give each split once with its own --out (got --split {list(splits)}, {len(outs)} --out)")
    if threads:
        torch.set_num_threads(threads)
    with recorded(outcome), cli_logging(log_file):
        try:
            provenances = cache_member_probs(data, ckpt, dict(zip(splits, outs)), member, fit, tta, flip, batch_size,
                                             workers, device, precision, compile, guard, parse_candidates(candidates),
                                             task, clips, reader)
        except (CheckpointError, DataFormatError, TaskError) as err:
            raise BadInput(str(err)) from None
    for out, provenance in zip(outs, provenances):
        log.info("wrote %s (%s)", out, {k: provenance[k] for k in ("member", "split", "fit", "tta", "flip")})


if __name__ == "__main__":
    main()
