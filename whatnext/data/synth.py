"""The embedded dataset generator: a stand-in for the challenge data in exactly its format.

``python -m whatnext.data.synth --out DIR --scale S [--preset NAME] [--size PX] --seed N`` writes

```
DIR/frames.zip        train/<class folder>/video_<id>/frame_<k>.jpg, val/ likewise, test/video_<id>/frame_<k>.jpg
DIR/train.csv         video_id,label
DIR/val.csv           video_id,label
DIR/test.csv          video_id
DIR/synth_test_labels.csv   video_id,label  (the generator's truth for test; never read by the pipeline)
```

with k = 0..3, square ``PX`` x ``PX`` RGB JPEG frames (default: the preset's native size), and the class
folder the class name of the clip's CSV label (the reader takes labels from the CSVs). Clip counts per class are
``round(scale * count)`` of the class table's train / val counts, at least 1 for a populated class (class
27 stays empty); the test split has ``round(6912 * scale)`` clips spread like the validation split, so
``--scale 1`` gives 44,993 / 6,745 / 6,912 clips. Video ids are distinct integers across the splits.

Each clip shows 4 frames at t = 0, 0.133, 0.267, 0.4 of a rendered action (``synth_programs``): what
happens next is the label. How clips look is the preset (``synth_presets``: scene source, objects,
contrast, zoom, clutter, camera motion, illumination, frame size, label noise); ``classic``, the
default, cuts backgrounds and objects from scikit-learn's sample photographs and digits, and ``murky``
is held out (report only, never used to choose a default). With label noise, that fraction of the
train and val CSV labels names another populated class than the clip shows (drawn per split from the
seed); ``synth_test_labels.csv`` is always the truth. The zip is bitwise identical for a given (preset,
scale, size, seed): clip content depends only on (seed, split, position) and every member carries a
fixed timestamp.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from PIL import Image
from tqdm import tqdm

from whatnext.data.class_table import ClassTable, class_counts, load_class_table
from whatnext.data.synth_programs import CLIP_TIMES, Program, class_programs
from whatnext.data.synth_presets import DEFAULT_PRESET, PRESETS, Look, get_look
from whatnext.data.synth_render import Scene, render_frame, sample_scene
from whatnext.runtime.atomic import atomic_open, atomic_path
from whatnext.runtime.errors import BadInput

SPLITS = ("train", "val", "test")
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SplitPlan:
    """The clips of one split, in CSV order: video ids (str), the class each clip shows (``labels``,
    int) and the class its CSV names (``annotated``: ``labels`` with the look's label noise)."""

    name: str
    video_ids: list[str]
    labels: list[int]
    annotated: list[int]


def noisy_labels(labels: np.ndarray, populated: list[int], rate: float, rng: np.random.Generator) -> np.ndarray:
    """``labels`` with a ``rate`` fraction (each clip independently) replaced by another class drawn
    uniformly from ``populated`` (so an empty class never gets a clip)."""
    labels = np.asarray(labels)
    flip = rng.random(len(labels)) < rate
    offset = rng.integers(1, len(populated), size=len(labels))  # never the clip's own class
    position = np.searchsorted(populated, labels)
    replaced = np.asarray(populated)[(position + offset) % len(populated)]
    return np.where(flip, replaced, labels)


def plan_splits(table: ClassTable, scale: float, seed: int, label_noise: float = 0.0) -> list[SplitPlan]:
    """Shuffled labels per split, distinct integer video ids across all splits, and the CSV labels
    (with ``label_noise`` on train and val; none on test)."""
    counts = class_counts(table, scale)
    rng = np.random.default_rng([seed, 0])
    total = sum(sum(c) for c in counts.values())
    ids = rng.permutation(np.arange(1, 4 * total + 1))[:total]
    populated = [c for c in range(table.num_classes) if c not in table.empty_classes]
    plans, start = [], 0
    for s, name in enumerate(SPLITS):
        labels = np.repeat(np.arange(table.num_classes), counts[name])
        labels = np.random.default_rng([seed, 1, s]).permutation(labels)
        annotated = labels
        if label_noise > 0 and name != "test":
            annotated = noisy_labels(labels, populated, label_noise, np.random.default_rng([seed, 3, s]))
        video_ids = [str(i) for i in ids[start : start + len(labels)]]
        plans.append(SplitPlan(name, video_ids, labels.tolist(), annotated.tolist()))
        start += len(labels)
    return plans


def render_clip(program: Program, scene: Scene, times: tuple[float, ...] = CLIP_TIMES) -> np.ndarray:
    """The program's frames at ``times``: uint8 [len(times), S, S, 3]."""
    flip = scene.flip_coin if program.flip is None else program.flip
    return np.stack([render_frame(program.draw(scene.params, t), scene, flip, t) for t in times])


def clip_rng(seed: int, split: str, position: int) -> np.random.Generator:
    """The generator of one clip's scene: depends on (seed, split, position in the split) only."""
    return np.random.default_rng([seed, 2, SPLITS.index(split), position])


def member_dir(table: ClassTable, split: str, video_id: str, label: int) -> str:
    """Course-kit folder of a clip inside frames.zip."""
    if split == "test":
        return f"test/video_{video_id}"
    return f"{split}/{table.names[label]}/video_{video_id}"


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One RGB frame [H, W, 3] uint8 as JPEG bytes at ``quality`` (1-95, Pillow)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _write_csv(path: Path, video_ids: list[str], labels: list[int] | None) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("video_id\n" if labels is None else "video_id,label\n")
        for i, video_id in enumerate(video_ids):
            handle.write(f"{video_id}\n" if labels is None else f"{video_id},{labels[i]}\n")


def generate(out: str | Path, scale: float, size: int | None = None, seed: int = 0, quality: int = 90,
             table: ClassTable | None = None, progress: bool = True, preset: str | Look = DEFAULT_PRESET) -> list[SplitPlan]:
    """Write a generated data dir in the preset's look (see the module docstring; ``size`` None: the
    preset's native size); returns the split plans."""
    look = get_look(preset) if isinstance(preset, str) else preset
    size = look.size if size is None else size
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    table = table or load_class_table()
    out = Path(out)
    programs = class_programs(table)
    plans = plan_splits(table, scale, seed, look.label_noise)
    total = sum(len(p.labels) for p in plans)
    with atomic_path(out / "frames.zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        with tqdm(total=total, desc="synth clips", unit="clip", disable=not progress) as bar:
            for plan in plans:
                for position, (video_id, label) in enumerate(zip(plan.video_ids, plan.labels)):
                    scene = sample_scene(clip_rng(seed, plan.name, position), size, look)
                    folder = member_dir(table, plan.name, video_id, plan.annotated[position])
                    for k, frame in enumerate(render_clip(programs[label], scene)):
                        info = zipfile.ZipInfo(f"{folder}/frame_{k}.jpg", date_time=ZIP_TIMESTAMP)
                        info.external_attr = 0o644 << 16
                        archive.writestr(info, encode_jpeg(frame, quality))
                    bar.update()
    train, val, test = plans
    _write_csv(out / "train.csv", train.video_ids, train.annotated)
    _write_csv(out / "val.csv", val.video_ids, val.annotated)
    _write_csv(out / "test.csv", test.video_ids, None)
    _write_csv(out / "synth_test_labels.csv", test.video_ids, test.labels)
    return plans


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Data dir to write.")
@click.option("--scale", required=True, type=float, help="Fraction of the challenge's clip counts (1 = full size).")
@click.option("--preset", default=DEFAULT_PRESET, show_default=True, type=click.Choice(list(PRESETS)),
              help="How the clips look (whatnext.data.synth_presets; murky is held out: report only).")
@click.option("--size", default=None, type=int, help="Frame side in pixels [default: the preset's, classic 64].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed; same seed => identical files.")
@click.option("--quality", default=90, show_default=True, type=click.IntRange(1, 100), help="JPEG quality.")
def main(out: str, scale: float, preset: str, size: int | None, seed: int, quality: int) -> None:
    """Generate a dataset in the challenge format (frames.zip + train/val/test CSVs)."""
    try:
        plans = generate(out, scale, size, seed, quality, preset=preset)
    except ValueError as err:
        raise BadInput(str(err)) from err
    click.echo(" / ".join(f"{p.name} {len(p.labels)}" for p in plans) + f" clips ({preset}) written to {out}", err=True)


if __name__ == "__main__":
    main()
