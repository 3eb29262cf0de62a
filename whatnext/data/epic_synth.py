"""``python -m whatnext.data.epic_synth``: a generated EPIC-KITCHENS-like dataset, for the CPU and CI.

Deterministic for its options: byte-identical JPEGs and CSVs, and MP4s byte-identical for a given codec
backend and FFmpeg build (one encoder thread). Writes into ``--out``:

- ``rgb_frames/P01/P01_101/frame_0000000001.jpg``: the extracted frames of each video (EPIC's layout,
  1-based frame numbers); the first ``--mp4`` videos of each participant are written instead as
  ``videos/P01/P01_101.MP4`` (:func:`whatnext.data.mp4.write_mp4`: H.264 yuv420p, a keyframe every second,
  through TorchCodec where it finds FFmpeg libraries, else PyAV; ``--size`` must then be even);
- ``train.csv``, ``val.csv`` (``narration_id, participant_id, video_id, start_frame, stop_frame, verb_class,
  noun_class``; EPIC_100_train / EPIC_100_validation's columns), ``test.csv`` (the same without the classes)
  and ``synth_test_labels.csv`` (the test truth, for checks only);
- ``verb_classes.csv``, ``noun_classes.csv`` (``id,key``; their row counts are the task's head sizes) and
  ``video_info.csv`` (``video_id,duration,fps``; frames = round(duration x fps)).

Each participant has ``--videos`` videos: the last is the test video, the one before it the validation
video, the others train. A video is a still textured kitchen with ``--segments`` segments of different
lengths (6 to 48 frames, gaps between them). In a segment an object moves: its colour and pattern say the
noun, its motion (direction and speed, a verb-specific path) says the verb, so the noun shows in any frame
and the verb only across frames. Verbs and nouns are long-tailed (Zipf weights, exponent 1.1, drawn
independently, so many verb x noun pairs are rare or unseen). Between segments the object idles.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
from pathlib import Path

import click
import numpy as np

from whatnext.data.mp4 import backend, write_mp4
from whatnext.data.synth import encode_jpeg
from whatnext.runtime.atomic import atomic_path
from whatnext.runtime.logging_setup import cli_logging

log = logging.getLogger(__name__)

FPS = 50
SEGMENT_FRAMES = (6, 48)
GAP_FRAMES = (2, 12)
ZIPF = 1.1
PATTERNS = 4  # solid, horizontal stripes, vertical stripes, checker
COLUMNS = ["narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class", "noun_class"]
VERB_NAMES = ["take", "put", "wash", "open", "close", "insert", "turn-on", "cut", "turn-off", "pour", "mix", "move"]
NOUN_NAMES = ["tap", "spoon", "plate", "cupboard", "knife", "pan", "lid", "bowl", "drawer", "sponge", "glass", "hand"]


def zipf_weights(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** ZIPF
    return w / w.sum()


def noun_look(noun: int, nouns: int) -> tuple[np.ndarray, int]:
    """(RGB colour in [0, 1] [3], pattern 0..3) of a noun: hues spread over the nouns of each pattern."""
    hues = math.ceil(nouns / PATTERNS)
    hue, pattern = (noun % hues) / hues, noun // hues
    rgb = np.array([0.5 + 0.5 * math.cos(2 * math.pi * (hue + k / 3)) for k in range(3)])
    return 0.15 + 0.8 * rgb, pattern


def verb_path(verb: int, verbs: int, progress: np.ndarray) -> np.ndarray:
    """Object centre offsets [len(progress), 2] (fractions of the frame) along the verb's path at progress in [0, 1]."""
    angle = 2 * math.pi * (verb % 8) / 8
    kind = (verb // 8) % 3  # straight, there and back, arc
    reach = 0.35 if verb // 24 % 2 == 0 else 0.2
    if kind == 0:
        s = progress
    elif kind == 1:
        s = 1 - np.abs(2 * progress - 1)
    else:
        s = progress
    d = np.stack([np.cos(angle) * s, np.sin(angle) * s], axis=1) * reach
    if kind == 2:
        d += np.array([-math.sin(angle), math.cos(angle)])[None, :] * (0.15 * np.sin(math.pi * progress))[:, None]
    return d


def draw_object(frame: np.ndarray, centre: np.ndarray, colour: np.ndarray, pattern: int, side: int) -> None:
    """Paint the object (a square of ``side`` px) into ``frame`` float [H, W, 3] in place."""
    h, w, _ = frame.shape
    cy, cx = int(round((0.5 + centre[1]) * h)), int(round((0.5 + centre[0]) * w))
    y0, x0 = max(cy - side // 2, 0), max(cx - side // 2, 0)
    y1, x1 = min(cy + (side + 1) // 2, h), min(cx + (side + 1) // 2, w)
    if y1 <= y0 or x1 <= x0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    stripe = max(side // 4, 1)
    mask = {0: np.ones_like(yy, bool), 1: (yy // stripe) % 2 == 0, 2: (xx // stripe) % 2 == 0,
            3: ((yy // stripe) + (xx // stripe)) % 2 == 0}[pattern]
    patch = frame[y0:y1, x0:x1]
    patch[mask] = colour
    patch[~mask] = colour * 0.35


def plan_video(rng: np.random.Generator, segments: int, verbs: int, nouns: int) -> tuple[list[tuple], int]:
    """([(start_frame, stop_frame, verb, noun)] 1-based inclusive, total frames) of one video."""
    vw, nw = zipf_weights(verbs), zipf_weights(nouns)
    frame, rows = 1, []
    for _ in range(segments):
        frame += int(rng.integers(*GAP_FRAMES))
        length = int(rng.integers(*SEGMENT_FRAMES))
        rows.append((frame, frame + length - 1, int(rng.choice(verbs, p=vw)), int(rng.choice(nouns, p=nw))))
        frame += length
    return rows, frame + int(rng.integers(*GAP_FRAMES))


def render_video(rng: np.random.Generator, rows: list[tuple], total: int, size: int, verbs: int, nouns: int) -> np.ndarray:
    """uint8 [total, size, size, 3]: the video's background with its segments' objects moving on it."""
    base = rng.uniform(0.25, 0.55, 3)
    texture = rng.normal(0, 0.06, (size // 4 + 1, size // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:size, :size]
    background = np.clip(base + texture, 0, 1)
    side = max(size // 4, 3)
    idle_colour = np.array([0.8, 0.8, 0.8])
    frames = np.repeat(background[None], total, axis=0)
    for t in range(total):
        draw_object(frames[t], np.array([0.3, 0.3]), idle_colour * 0.6, 0, max(side // 2, 2))
    for start, stop, verb, noun in rows:
        colour, pattern = noun_look(noun, nouns)
        progress = np.linspace(0, 1, stop - start + 1)
        start_at = rng.uniform(-0.12, 0.12, 2)
        for t, d in zip(range(start - 1, stop), verb_path(verb, verbs, progress)):
            draw_object(frames[t], start_at + d, colour, pattern, side)
    noise = rng.normal(0, 0.02, frames.shape)
    return (np.clip(frames + noise, 0, 1) * 255).round().astype(np.uint8)


def write_csv(path: Path, header: list[str], rows: list) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_frames(folder: Path, frames: np.ndarray) -> None:
    """The video's JPEGs, written into a ``.partial`` folder renamed onto ``folder`` when complete."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for k, frame in enumerate(frames, start=1):
        (partial / f"frame_{k:010d}.jpg").write_bytes(encode_jpeg(frame, 90))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def generate(out: Path, participants: int = 2, videos: int = 3, segments: int = 30, verbs: int = 97, nouns: int = 300,
             size: int = 32, mp4: int = 1, seed: int = 0) -> dict:
    """Write the dataset into ``out``; returns counts {split: segments}, the MP4s written and their backend."""
    if videos < 3:
        raise click.BadParameter(f"--videos must be at least 3 (train, val, test), got {videos}")
    if mp4 and size % 2:
        raise click.BadParameter(f"--size must be even for MP4 videos (yuv420p), got {size} with --mp4 {mp4}")
    codec = backend() if mp4 else None  # fails before writing anything where no MP4 codec is installed
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    info, mp4_written = [], []
    for p in range(1, participants + 1):
        pid = f"P{p:02d}"
        for v in range(videos):
            vid = f"{pid}_{101 + v}"
            rng = np.random.default_rng([seed, p, v])
            rows, total = plan_video(rng, segments, verbs, nouns)
            frames = render_video(rng, rows, total, size, verbs, nouns)
            split = "test" if v == videos - 1 else "val" if v == videos - 2 else "train"
            if v < mp4:
                write_mp4(out / "videos" / pid / f"{vid}.MP4", frames, FPS, gop=FPS, backend_name=codec)
                mp4_written.append(vid)
            else:
                write_frames(out / "rgb_frames" / pid / vid, frames)
            info.append((vid, f"{total / FPS:.2f}", FPS))
            splits[split] += [(f"{vid}_{k}", pid, vid, a, b, verb, noun) for k, (a, b, verb, noun) in enumerate(rows)]
    for split in ("train", "val"):
        write_csv(out / f"{split}.csv", COLUMNS, splits[split])
    write_csv(out / "test.csv", COLUMNS[:5], [row[:5] for row in splits["test"]])
    write_csv(out / "synth_test_labels.csv", COLUMNS, splits["test"])
    write_csv(out / "video_info.csv", ["video_id", "duration", "fps"], info)
    for file, n, names, prefix in (("verb_classes.csv", verbs, VERB_NAMES, "verb"), ("noun_classes.csv", nouns, NOUN_NAMES, "noun")):
        write_csv(out / file, ["id", "key"], [(i, names[i] if i < len(names) else f"{prefix}-{i}") for i in range(n)])
    counts = {split: len(rows) for split, rows in splits.items()}
    return {"segments": counts, "mp4": mp4_written, "mp4_backend": codec if mp4_written else None}


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option("--participants", default=2, show_default=True, type=click.IntRange(1))
@click.option("--videos", default=3, show_default=True, type=click.IntRange(3), help="Videos per participant (last: test, one before: val).")
@click.option("--segments", default=30, show_default=True, type=click.IntRange(1), help="Segments per video.")
@click.option("--verbs", default=97, show_default=True, type=click.IntRange(2), help="Verb classes (EPIC: 97).")
@click.option("--nouns", default=300, show_default=True, type=click.IntRange(2), help="Noun classes (EPIC: 300).")
@click.option("--size", default=32, show_default=True, type=click.IntRange(16), help="Frame side in pixels.")
@click.option("--mp4", default=1, show_default=True, type=click.IntRange(0),
              help="Videos per participant written as MP4 only (the first ones; --size even).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
def main(out, **options):
    """Generate the EPIC-like dataset (deterministic for its options)."""
    with cli_logging():
        result = generate(out, **options)
        log.info("wrote %s: segments %s, MP4 videos %s (%s)", out, result["segments"], result["mp4"] or "none",
                 result["mp4_backend"] or "no encoder used")


if __name__ == "__main__":
    main()
