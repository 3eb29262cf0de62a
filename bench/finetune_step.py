"""Finetuning throughput per track, encoder and head at the CPU default size (clips/s; run on demand).

    python bench/finetune_step.py [--img-size 32] [--batch-size 32] [--threads 2] [--steps 6] [--data DATA]

For each (track, encoder, head, aux) it times full training steps of the finetuning objective
(forward, loss, backward, AdamW step) on random normalised clips [B, 4, 3, S, S] and reports the
median clips/s over ``--steps`` steps after one warm-up step, plus inference clips/s (one view,
no grad). With ``--data`` it also times the training data pipeline (JPEG decode + clip-coherent
augmentation, one and two views) on that data dir. Prints a Markdown table.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import click
import torch

from whatnext.finetune.driver import FinetuneObjective
from whatnext.finetune.optim import layer_decay_groups
from whatnext.models import build_model, list_heads

TRACKS = [  # (track, encoder at the CPU default size, aux variants)
    ("mae2d", "mae2d_vit_tiny", [(), ("pair_direction", "consistency")]),
    ("videomae", "videomae_vit_tiny", [()]),
    ("scratch", "conv2d_tiny", [()]),
    ("scratch", "conv3d_tiny", [()]),
    ("scratch", "efficientformerv2_s0", [()]),
]


def time_training(encoder: str, head: str, aux: tuple[str, ...], img_size: int, batch_size: int, steps: int) -> tuple[float, float]:
    """(train clips/s, inference clips/s), medians over ``steps`` steps after a warm-up."""
    torch.manual_seed(0)
    classifier = build_model({"encoder": encoder, "head": head, "img_size": img_size, "num_frames": 4})
    objective = FinetuneObjective(classifier, aux, label_smoothing=0.1)
    optimizer = torch.optim.AdamW(layer_decay_groups(objective, 1e-3, 0.05, 0.75, "classifier.encoder."))
    views = 2 if "consistency" in aux else 1
    shape = (batch_size, views, 4, 3, img_size, img_size) if views > 1 else (batch_size, 4, 3, img_size, img_size)
    batch = (torch.randn(shape), torch.randint(0, 33, (batch_size,)), None)
    train_times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        loss = objective.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            train_times.append(time.perf_counter() - started)
    classifier.eval()
    clips = batch[0][:, 0] if views > 1 else batch[0]
    infer_times = []
    with torch.no_grad():
        for step in range(steps + 1):
            started = time.perf_counter()
            classifier(clips)
            if step:
                infer_times.append(time.perf_counter() - started)
    return batch_size / statistics.median(train_times), batch_size / statistics.median(infer_times)


def time_data(data: Path, img_size: int, clips: int) -> dict[str, float]:
    """Clips/s of decode + augmentation with one and with two views."""
    from whatnext.data.norm_stats import load_norm_stats
    from whatnext.finetune.augment import STANDARD, train_transform
    from whatnext.finetune.training_sets import open_training_set

    mean, std = load_norm_stats(data / "norm_stats.json")
    rates = {}
    for views in (1, 2):
        dataset = open_training_set(data, "train", train_transform(img_size, mean, std, STANDARD, views == 2), 33)
        started = time.perf_counter()
        for i in range(min(clips, len(dataset))):
            dataset[i]
        rates[f"{views} view(s)"] = min(clips, len(dataset)) / (time.perf_counter() - started)
    return rates


@click.command()
@click.option("--img-size", type=int, default=32, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--steps", type=int, default=6, show_default=True)
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
def main(img_size, batch_size, threads, steps, data):
    torch.set_num_threads(threads)
    print(f"img_size {img_size}, batch {batch_size}, threads {threads}, median of {steps} steps\n")
    print("| track | encoder | head | aux | train clips/s | inference clips/s (1 view) |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    for track, encoder, aux_variants in TRACKS:
        for head in list_heads():
            for aux in aux_variants:
                train, infer = time_training(encoder, head, aux, img_size, batch_size, steps)
                print(f"| {track} | {encoder} | {head} | {'+'.join(aux) or '-'} | {train:.0f} | {infer:.0f} |", flush=True)
    if data is not None:
        print("\n| data pipeline (decode + augment) | clips/s |\n| --- | ---: |")
        for name, rate in time_data(data, img_size, clips=200).items():
            print(f"| {name} | {rate:.0f} |")


if __name__ == "__main__":
    main()
