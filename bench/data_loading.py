"""Data-loading throughput: reader + clip-coherent augmentation against raw JPEG decoding.

``python bench/data_loading.py [--data DIR] [--clips N] [--repeats R]``

Without ``--data`` it generates a small challenge-format dataset with 224 px frames (like the challenge's)
in a temporary folder. On one core (torch threads = 1, no DataLoader workers) it times, in clips/s
(median of R passes over the same N training clips):

- raw decode: the clips' 4 JPEGs decoded from bytes already in memory (PIL, full size; and in draft
  mode to the CPU size): the floor to approach;
- reader: ``ClipDataset`` (zip read + decode) alone;
- reader + augmentation: ``ClipDataset`` with ``TrainTransform`` at 224 px and at the CPU default size,
  with JPEG draft mode on and off.

The ratio column divides by the raw decode rate of the same decode mode (the target is >= 0.8).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import torch

from whatnext.data.clip_transforms import TrainTransform
from whatnext.data.zip_dataset import ClipDataset, decode_jpeg

MEAN, STD = [0.45] * 3, [0.25] * 3


def rate(fn, n: int, repeats: int) -> float:
    """Median clips/s of ``fn`` (one pass over n clips) over ``repeats`` passes, after one warm-up clip."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


@click.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), help="Data dir (default: generate one).")
@click.option("--clips", default=200, show_default=True, type=click.IntRange(1), help="Training clips timed per pass.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1), help="Passes; the median is reported.")
@click.option("--cpu-size", default=64, show_default=True, type=int, help="The CPU default training size (px).")
def main(data_dir: str | None, clips: int, repeats: int, cpu_size: int) -> None:
    """Print clips/s of raw decode, reader, and reader + augmentation at 224 px and the CPU size."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if data_dir is None:
            from whatnext.data.synth import generate

            data_dir = Path(tmp)
            generate(data_dir, scale=clips / 40_000, size=224, seed=0, progress=False)
        probe = ClipDataset(data_dir, "train")
        n = min(clips, len(probe))
        payloads = [[probe.source.read(m) for m in probe.members[i]] for i in range(n)]
        source_px = probe.read_frames(0).shape[-1]

        def raw(frame_size, draft):
            return lambda: [[decode_jpeg(b, frame_size, draft) for b in clip] for clip in payloads]

        def pipeline(size, frame_size, draft, augment=True):
            ds = ClipDataset(data_dir, "train", TrainTransform(size, MEAN, STD) if augment else None,
                             frame_size=frame_size, draft=draft)
            return lambda: [ds[i] for i in range(n)]

        resize = round(cpu_size * 1.15)  # decode a little above the crop size, then random-resized-crop
        floors = {"full": rate(raw(None, False), n, repeats), "draft": rate(raw(resize, True), n, repeats)}
        rows = [
            ("raw JPEG decode (in-memory bytes)", source_px, "-", floors["full"], "full"),
            (f"raw JPEG decode, draft to {resize} px", resize, "on", floors["draft"], "draft"),
            ("reader only (zip read + decode)", source_px, "-", rate(pipeline(0, None, False, False), n, repeats), "full"),
            ("reader + augmentation", 224, "-", rate(pipeline(224, None, False), n, repeats), "full"),
            (f"reader({resize} px) + augmentation", cpu_size, "off", rate(pipeline(cpu_size, resize, False), n, repeats), "full"),
            (f"reader({resize} px) + augmentation", cpu_size, "on", rate(pipeline(cpu_size, resize, True), n, repeats), "draft"),
        ]
    click.echo(f"{n} clips of 4 x {source_px} px JPEG frames, 1 thread, median of {repeats} passes\n")
    click.echo(f"| {'path':<40} | out px | draft | clips/s | ratio to raw decode (same mode) |")
    click.echo(f"| {'-' * 40} | ------ | ----- | ------- | ------------------------------- |")
    for name, px, draft, clips_s, mode in rows:
        click.echo(f"| {name:<40} | {px:>6} | {draft:>5} | {clips_s:>7.1f} | {clips_s / floors[mode]:>5.2f} ({mode:>5}) {'':<18} |")


if __name__ == "__main__":
    main()
