"""Data-loading throughput: the training loaders and the training step's augmentation against raw JPEG decoding.

``python bench/data_loading.py [--data DIR] [--clips N] [--repeats R]``

Without ``--data`` it generates a small challenge-format dataset with 224 px frames (like the challenge's)
in a temporary folder. On one core (torch threads = 1, no DataLoader workers) it times clips per CPU
second of this process (robust on a shared machine), median of R rounds that interleave the passes over
the same N training clips:

- raw decode: the clips' 4 JPEGs decoded from bytes already in memory with the reader's own decoders
  (TorchCodec at full size; Pillow in draft mode to the CPU size): the floor to approach; and Pillow at full
  size for reference (the reader's full-size decoder before TorchCodec);
- loader items: ``ClipDataset(..., stacked=False)`` items (zip read + decode), what the training loaders
  produce per clip now that all augmentation runs in the training step (target >= 0.8 of raw decode);
- loader batches: the items of each 32 clips collated by ``collate_clips`` (one copy of every pixel into
  the batch, as torch's default collate makes), at full size (the 224 px path) and decoding to 1.15 x the
  CPU default size with JPEG draft mode off and on, and draft-only (``resize=False``: the draft-scaled
  frames are padded into the batch and the step's crop does all resizing);
- batch step: ``ClipAugmenter`` on those collated batches (random resized crop + resize, label-aware flip,
  colour jitter, normalisation: the augmentation, which runs in the training step, on the GPU on the
  cluster), timed on this CPU in rounds of their own after the decoding rounds, with the ratio of the whole
  CPU path (loader + step on the same core, as in a CPU-only run; round r of the loader with round r of
  the step).

The ratio column is the median over rounds of (raw decode time of the same decode mode / the pass's time)
in that round, less sensitive to the machine's changing load than a ratio of medians.
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

from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.clip_transforms import ClipAugmenter
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
    """Print clips per CPU second of raw decode, reader, training loaders and batch augmentation at 224 px and the CPU size."""
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

        def dataset(frame_size=None, draft=False, resize=True):  # as the training loaders open it
            return ClipDataset(data_dir, "train", frame_size=frame_size, draft=draft, resize=resize, stacked=False)

        def reader(ds):
            return lambda: [ds[i] for i in range(n)]

        def loader(ds):
            return lambda: [collate_clips([ds[i] for i in range(start, min(start + BATCH, n))]) for start in range(0, n, BATCH)]

        def batch_step(ds, size):
            batches = loader(ds)()
            augmenter = ClipAugmenter(size, ClipNormaliser(MEAN, STD), jitter=0.3)
            return lambda: [augmenter(frames, labels, sizes) for frames, labels, _, sizes in batches]

        resize = round(cpu_size * 1.15)  # decode a little above the crop size
        full, draft, draft_only = dataset(), dataset(resize, True), dataset(resize, True, False)
        passes = {
            ("raw JPEG decode (in-memory bytes)", source_px, "-", "full"): raw(None, False),
            ("raw JPEG decode, Pillow (reference)", source_px, "-", "pillow"): raw_pillow(),
            (f"raw JPEG decode, draft to {resize} px", resize, "on", "draft"): raw(resize, True),
            (f"raw JPEG decode, draft only (>= {resize} px)", f">={resize}", "on", "draft-only"): raw(resize, True, False),
            ("loader items (zip read + decode)", source_px, "-", "full"): reader(full),
            ("loader batches (items + collate copy)", source_px, "-", "full"): loader(full),
            (f"loader batches, decode to {resize} px", resize, "off", "pillow"): loader(dataset(resize, False)),
            (f"loader batches, decode to {resize} px", resize, "on", "draft"): loader(draft),
            ("loader batches, draft only", f">={resize}", "on", "draft-only"): loader(draft_only),
        }
        times = round_times(passes, repeats)
        steps = {  # own rounds, after the decoding ones: their large float batches stay out of the decoders' memory
            ("batch step: crop, flip, jitter, normalise", 224, "-", "step:full"): batch_step(full, 224),
            ("batch step: crop, flip, jitter, normalise", cpu_size, "on", "step:draft"): batch_step(draft, cpu_size),
            ("batch step: crop, flip, jitter, normalise", cpu_size, "on", "step:draft-only"): batch_step(draft_only, cpu_size),
        }
        times |= round_times(steps, repeats)
    floors = {key[3]: t for key, t in times.items() if key[0].startswith("raw")}
    loaders = {key[3]: t for key, t in times.items() if key[0].startswith("loader batches")}
    click.echo(f"{n} clips of 4 x {source_px} px JPEG frames, 1 thread, clips per CPU second, median of {repeats} rounds\n")
    click.echo(f"| {'path':<44} | out px | draft | clips/CPU-s | ratio to raw decode of the same mode |")
    click.echo(f"| {'-' * 44} | ------ | ----- | ----------- | {'-' * 36} |")
    for (name, px, draft_mode, mode), t in times.items():
        clips_s = n / statistics.median(t)
        if mode.startswith("step:"):  # the whole CPU path: its loader, then this step, on one core
            mode = mode.removeprefix("step:")
            ratio = statistics.median(raw / (own + step) for raw, own, step in zip(floors[mode], loaders[mode], t))
            note = f"{ratio:.2f} (loader + step, {mode})"
        else:
            ratio = statistics.median(raw / own for raw, own in zip(floors[mode], t))  # within a round: same machine load
            note = f"{ratio:.2f} ({mode})"
        click.echo(f"| {name:<44} | {px:>6} | {draft_mode:>5} | {clips_s:>11.1f} | {note:<36} |")


if __name__ == "__main__":
    main()
