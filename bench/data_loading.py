"""Data-loading throughput: reader + clip-coherent augmentation against raw JPEG decoding.

``python bench/data_loading.py [--data DIR] [--clips N] [--repeats R]``

Without ``--data`` it generates a small challenge-format dataset with 224 px frames (like the challenge's)
in a temporary folder. On one core (torch threads = 1, no DataLoader workers) it times clips per CPU
second of this process (robust on a shared machine), median of R rounds that interleave the passes over
the same N training clips:

- raw decode: the clips' 4 JPEGs decoded from bytes already in memory with the reader's own decoders
  (TorchCodec at full size; Pillow in draft mode to the CPU size): the floor to approach; and Pillow at full
  size for reference (the reader's full-size decoder before TorchCodec);
- reader: ``ClipDataset`` (zip read + decode) alone;
- reader + augmentation: ``ClipDataset`` with the loaders' ``TrainTransform`` (random resized crop and
  label-aware flip, uint8 out) at 224 px and at the CPU default size, decoding to 1.15 x that size with
  JPEG draft mode off and on, and draft-only (``resize=False``: the draft-scaled frame goes straight to the
  random resized crop);
- batch step: ``ClipNormaliser`` colour jitter + normalisation of batches of 32 uint8 clips (the part of the
  augmentation that runs in the training step, on the GPU on the cluster), timed on this CPU, and the
  whole CPU path (loader + batch step on the same core, as in a CPU-only run).

The ratio column is the median over rounds of (raw decode time of the same decode mode / the pass's time)
in that round, less sensitive to the machine's changing load than a ratio of medians (target >= 0.8 for
the loaders' reader + augmentation).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.clip_transforms import TrainTransform
from whatnext.data.zip_dataset import ClipDataset, decode_jpeg

MEAN, STD = [0.45] * 3, [0.25] * 3
BATCH = 32


def round_times(passes: dict, repeats: int) -> dict:
    """CPU seconds of each pass (a function reading the clips) in each of ``repeats`` rounds that interleave
    the passes: CPU time of this process, so other jobs on a shared machine do not count."""
    times = {name: [] for name in passes}
    for _ in range(repeats):
        for name, fn in passes.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return times


@click.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), help="Data dir (default: generate one).")
@click.option("--clips", default=200, show_default=True, type=click.IntRange(1), help="Training clips timed per pass.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1), help="Passes; the median is reported.")
@click.option("--cpu-size", default=64, show_default=True, type=int, help="The CPU default training size (px).")
def main(data_dir: str | None, clips: int, repeats: int, cpu_size: int) -> None:
    """Print clips per CPU second of raw decode, reader, and reader + augmentation at 224 px and the CPU size."""
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

        def raw(frame_size, draft, resize=True):
            return lambda: [[decode_jpeg(b, frame_size, draft, resize) for b in clip] for clip in payloads]

        def raw_pillow():
            return lambda: [[np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in clip] for clip in payloads]

        def pipeline(size, frame_size, draft, augment=True, resize=True):
            ds = ClipDataset(data_dir, "train", TrainTransform(size) if augment else None,
                             frame_size=frame_size, draft=draft, resize=resize)
            return lambda: [ds[i] for i in range(n)]

        def batch_step(size):
            batches = [torch.randint(0, 256, (BATCH, 4, 3, size, size), dtype=torch.uint8)] * max(1, round(n / BATCH))
            normaliser = ClipNormaliser(MEAN, STD)
            return lambda: [normaliser(batch, jitter=0.3) for batch in batches]

        resize = round(cpu_size * 1.15)  # decode a little above the crop size, then random-resized-crop
        passes = {
            ("raw JPEG decode (in-memory bytes)", source_px, "-", "full"): raw(None, False),
            ("raw JPEG decode, Pillow (reference)", source_px, "-", "pillow"): raw_pillow(),
            (f"raw JPEG decode, draft to {resize} px", resize, "on", "draft"): raw(resize, True),
            ("reader only (zip read + decode)", source_px, "-", "full"): pipeline(0, None, False, False),
            ("reader + augmentation", 224, "-", "full"): pipeline(224, None, False),
            (f"reader({resize} px) + augmentation", cpu_size, "off", "pillow"): pipeline(cpu_size, resize, False),
            (f"reader({resize} px) + augmentation", cpu_size, "on", "draft"): pipeline(cpu_size, resize, True),
            (f"raw JPEG decode, draft only (>= {resize} px)", f">={resize}", "on", "draft-only"): raw(resize, True, False),
            ("reader(draft only) + augmentation", cpu_size, "on", "draft-only"): pipeline(cpu_size, resize, True, resize=False),
            ("batch step: colour jitter + normalise", 224, "-", "batch"): batch_step(224),
            ("batch step: colour jitter + normalise", cpu_size, "-", "batch"): batch_step(cpu_size),
        }
        times = round_times(passes, repeats)
    floors = {key[3]: t for key, t in times.items() if key[0].startswith("raw")}
    batch_clips = max(1, round(n / BATCH)) * BATCH
    loaders = {224: ("reader + augmentation", 224, "-", "full"),
               cpu_size: (f"reader({resize} px) + augmentation", cpu_size, "on", "draft")}
    click.echo(f"{n} clips of 4 x {source_px} px JPEG frames, 1 thread, clips per CPU second, median of {repeats} rounds\n")
    click.echo(f"| {'path':<44} | out px | draft | clips/CPU-s | ratio to raw decode of the same mode |")
    click.echo(f"| {'-' * 44} | ------ | ----- | ----------- | {'-' * 36} |")
    for (name, px, draft, mode), t in times.items():
        if mode == "batch":  # the ratio of the whole CPU path: this loader, then this batch step, on one core
            clips_s = batch_clips / statistics.median(t)
            loader = loaders[px]
            ratio = statistics.median(raw / (own + step * n / batch_clips)
                                      for raw, own, step in zip(floors[loader[3]], times[loader], t))
            note = f"{ratio:.2f} (with its loader, {loader[3]})"
        else:
            clips_s = n / statistics.median(t)
            ratio = statistics.median(raw / own for raw, own in zip(floors[mode], t))  # within a round: same machine load
            note = f"{ratio:.2f} ({mode})"
        click.echo(f"| {name:<44} | {px:>6} | {draft:>5} | {clips_s:>11.1f} | {note:<36} |")

if __name__ == "__main__":
    main()
