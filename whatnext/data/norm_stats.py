"""Normalisation statistics from the training split (closed world: no ImageNet constants).

``python -m whatnext.data.norm_stats --data DATA --out DATA/norm_stats.json`` writes::

    {"mean": [r, g, b], "std": [r, g, b], "num_clips": n, "split": "train"}

mean and std per RGB channel over every pixel of every frame of the (evenly subsampled, at most
``--max-clips``) training clips, in [0, 1] units. Readers use ``load_norm_stats``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from whatnext.data.zip_dataset import ClipDataset, DataFormatError
from whatnext.runtime.atomic import write_json
from whatnext.runtime.errors import BadInput


def compute_norm_stats(data_dir: str | Path, max_clips: int = 2000, frame_size: int | None = None, progress: bool = False,
                       task: str = "whatnext") -> dict:
    """Per-channel mean and std in [0, 1] units over up to ``max_clips`` evenly spaced training clips (task
    ``epic``: 4 uniformly spaced frames of each training segment, frames at their stored size)."""
    if task == "epic":
        from whatnext.data.epic_dataset import EpicSegments

        ds = EpicSegments(data_dir, "train", num_frames=4)
    else:
        ds = ClipDataset(data_dir, "train", frame_size=frame_size)
    if len(ds) == 0:
        raise DataFormatError(f"{ds.csv_path}: no training clips to compute statistics from")
    picks = np.unique(np.linspace(0, len(ds) - 1, min(max_clips, len(ds))).round().astype(int))
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i in tqdm(picks, desc="norm stats", unit="clip", disable=not progress):
        pixels = ds.read_frames(int(i)).permute(1, 0, 2, 3).reshape(3, -1).double() / 255.0
        total += pixels.sum(1).numpy()
        total_sq += (pixels * pixels).sum(1).numpy()
        count += pixels.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return {"mean": mean.tolist(), "std": std.tolist(), "num_clips": int(len(picks)), "split": "train"}


def load_norm_stats(path: str | Path) -> tuple[list[float], list[float]]:
    """(mean, std) from a norm_stats.json; raises ``DataFormatError`` naming the file if malformed."""
    path = Path(path)
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        mean, std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataFormatError(f"{path}: not a norm_stats file ({err})") from err
    if len(mean) != 3 or len(std) != 3 or not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise DataFormatError(f"{path}: need 3 finite means and 3 positive stds, got mean={mean} std={std}")
    return mean, std


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Data dir.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
@click.option("--max-clips", default=2000, show_default=True, type=click.IntRange(1), help="Clips to sample.")
@click.option("--frame-size", default=None, type=click.IntRange(8), help="Decode frames at this side (default: as stored).")
@click.option("--task", type=click.Choice(["whatnext", "epic"]), default="whatnext", show_default=True, help="The data's task (whatnext.tasks).")
def main(data_dir: str, out: str, max_clips: int, frame_size: int | None, task: str) -> None:
    """Compute per-channel mean/std of the training split and write them as JSON."""
    try:
        stats = compute_norm_stats(data_dir, max_clips, frame_size, progress=True, task=task)
    except DataFormatError as err:
        raise BadInput(str(err)) from err
    write_json(out, stats)
    click.echo(f"mean {np.round(stats['mean'], 4).tolist()} std {np.round(stats['std'], 4).tolist()} -> {out}", err=True)


if __name__ == "__main__":
    main()
