"""Finetuning throughput per track, encoder and head at the CPU default size (clips/s; run on demand).

    python bench/finetune_step.py [--img-size 32] [--batch-size 32] [--threads 1] [--steps 3] [--data DATA]

For each (track, encoder, head, aux) it times full training steps of the finetuning objective
(augmentation of random uint8 clips [B, 4, 3, S, S]: crop, resize, flip, colour jitter, normalisation;
forward, loss, backward, AdamW step) and reports the
median over ``--steps`` steps after one warm-up step of clips per wall second and clips per
CPU second of this process (the latter barely moves when other jobs share the machine; with one
thread on an idle machine the two agree), plus inference clips/s (one view, no grad). Each training
step is timed twice, alternately: the plain loop (backward, AdamW step) and the trainer's path at
``--precision`` (autocast and the gradient scaler of :class:`whatnext.runtime.precision.Acceleration`;
at fp32 on the CPU both are the same arithmetic, so their ratio shows the path's overhead). With
``--data`` it also times the training loader's work (JPEG decode + batch collation) on that data dir.
Prints a Markdown table.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import click
import torch

from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.finetune.augment import STANDARD, train_augmenter
from whatnext.finetune.driver import FinetuneObjective
from whatnext.finetune.optim import layer_decay_groups
from whatnext.models import build_model, list_heads
from whatnext.runtime.precision import PRECISIONS, Acceleration

TRACKS = [  # (track, encoder at the CPU default size, aux variants)
    ("mae2d", "mae2d_vit_tiny", [(), ("pair_direction", "consistency")]),
    ("videomae", "videomae_vit_tiny", [()]),
    ("scratch", "conv2d_tiny", [()]),
    ("scratch", "conv3d_tiny", [()]),
    ("scratch", "efficientformerv2_s0", [()]),
]


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_training(encoder: str, head: str, aux: tuple[str, ...], img_size: int, batch_size: int, steps: int,
                  precision: str = "fp32") -> dict[str, float]:
    """Clips per wall / CPU second of training steps (plain, and through the trainer's precision path) and of
    inference: medians over ``steps`` after a warm-up."""
    torch.manual_seed(0)
    classifier = build_model({"encoder": encoder, "head": head, "img_size": img_size, "num_frames": 4})
    normaliser = ClipNormaliser([0.45] * 3, [0.25] * 3)
    augment = train_augmenter(img_size, STANDARD, normaliser, two_views="consistency" in aux)
    objective = FinetuneObjective(classifier, aux, 0.1, augment)
    optimizer = torch.optim.AdamW(layer_decay_groups(objective, 1e-3, 0.05, 0.75, "classifier.encoder."))
    clips = torch.randint(0, 256, (batch_size, 4, 3, img_size, img_size), dtype=torch.uint8)
    batch = (clips, torch.randint(0, 33, (batch_size,)), None, [(img_size, img_size)] * batch_size)

    accel = Acceleration(torch.device("cpu"), precision)

    def train_step():
        loss = objective.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def accel_step():
        with accel.autocast():
            loss = objective.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        accel.backward(loss)
        accel.step(optimizer, objective.parameters())

    pairs = [(timed(train_step), timed(accel_step)) for _ in range(steps + 1)][1:]
    train, trainer = [p[0] for p in pairs], [p[1] for p in pairs]
    classifier.eval()
    with torch.no_grad():
        infer = [timed(lambda: classifier(normaliser(clips))) for _ in range(steps + 1)][1:]

    def rate(times: list[tuple[float, float]], which: int) -> float:
        return batch_size / statistics.median(t[which] for t in times)

    return {"train_wall": rate(train, 0), "train_cpu": rate(train, 1), "trainer_cpu": rate(trainer, 1),
            "infer_wall": rate(infer, 0), "infer_cpu": rate(infer, 1)}


def time_data(data: Path, batch_size: int, clips: int) -> tuple[float, float]:
    """Clips per wall / CPU second of the training loader's work: decode and collate batches."""
    from whatnext.finetune.training_sets import open_training_set

    dataset = open_training_set(data, "train", 33)
    n = min(clips, len(dataset))
    wall, cpu = timed(lambda: [collate_clips([dataset[i] for i in range(start, min(start + batch_size, n))])
                               for start in range(0, n, batch_size)])
    return n / wall, n / cpu


@click.command()
@click.option("--img-size", type=int, default=32, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--steps", type=int, default=3, show_default=True)
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Precision of the trainer-path column (auto is fp32 on the CPU).")
@click.option("--encoders", default=None, help="Comma-separated encoders to time (default: every track's).")
def main(img_size, batch_size, threads, steps, data, precision, encoders):
    torch.set_num_threads(threads)
    chosen = set(encoders.split(",")) if encoders else None
    print(f"img_size {img_size}, batch {batch_size}, threads {threads}, median of {steps} steps, load average {os.getloadavg()[0]:.1f}\n")
    print(f"| track | encoder | head | aux | train clips/s wall | train clips/CPU-s | trainer path {precision} clips/CPU-s "
          "| inference clips/s wall | inference clips/CPU-s |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for track, encoder, aux_variants in TRACKS:
        if chosen is not None and encoder not in chosen:
            continue
        for head in list_heads():
            for aux in aux_variants:
                r = time_training(encoder, head, aux, img_size, batch_size, steps, precision)
                print(f"| {track} | {encoder} | {head} | {'+'.join(aux) or '-'} | {r['train_wall']:.1f} | {r['train_cpu']:.1f} "
                      f"| {r['trainer_cpu']:.1f} | {r['infer_wall']:.1f} | {r['infer_cpu']:.1f} |", flush=True)
    if data is not None:
        wall, cpu = time_data(data, batch_size, clips=200)
        print(f"\n| training loader (decode + collate) | clips/s wall | clips/CPU-s |\n| --- | ---: | ---: |\n| {data} | {wall:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
