"""Learning check of the finetuning tracks on generated data (issue 4, point 6; run on demand).

    python bench/finetune_learning.py --data DATA [--mae2d-ckpt ENC.pt] [--videomae-ckpt ENC.pt] [--jepa-ckpt ENC.pt] --out-dir DIR \
        [--max-epochs 6] [--batch-size 32] [--lr 1e-3] [--threads 1] [--only NAME ...] [--extra=--FLAG=VALUE ...]

Runs each case through its CLI (``python -m whatnext.finetune.track_a_*``, ``--fit train``) with the
same training flags and prints, per case, the validation top-1/top-5 of the last epoch, the
majority-class baseline (the most frequent training label's share of validation) and their ratio,
with wall and CPU seconds. The SSL cases have "random" twins: the same track, head and budget on an
encoder checkpoint of the same architecture with freshly initialised weights, so the difference is
the SSL initialisation alone.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import click
import torch


def random_encoder_like(ssl_ckpt: Path, out: Path, seed: int = 0) -> Path:
    """An encoder checkpoint with the config of ``ssl_ckpt`` and random weights (seeded)."""
    from whatnext.models import build_encoder
    from whatnext.runtime.checkpoint import load_checkpoint, save_checkpoint

    config = load_checkpoint(ssl_ckpt, expected_kind="encoder")["model_config"]
    torch.manual_seed(seed)
    save_checkpoint(out, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                    meta={"random_init_like": str(ssl_ckpt)})
    return out


def cases(mae2d_ckpt: Path | None, videomae_ckpt: Path | None, jepa_ckpt: Path | None, out_dir: Path) -> dict[str, list[str]]:
    """Case name -> CLI arguments (module and track-specific flags); SSL cases only for the checkpoints given."""
    found = {
        "scratch conv2d_tiny attn": ["track_a_scratch", "--arch", "conv2d_tiny", "--head", "attn"],
        "scratch conv3d_tiny attn": ["track_a_scratch", "--arch", "conv3d_tiny", "--head", "attn"],
    }
    if mae2d_ckpt is not None:
        mae2d_random = random_encoder_like(mae2d_ckpt, out_dir / "mae2d_random.pt")
        found |= {
            "mae2d SSL perceiver": ["track_a_mae2d", "--encoder-ckpt", str(mae2d_ckpt), "--head", "perceiver"],
            "mae2d random perceiver": ["track_a_mae2d", "--encoder-ckpt", str(mae2d_random), "--head", "perceiver"],
            "mae2d SSL perceiver +aux": ["track_a_mae2d", "--encoder-ckpt", str(mae2d_ckpt), "--head", "perceiver",
                                         "--aux", "pair_direction", "--aux", "consistency"],
        }
    if videomae_ckpt is not None:
        videomae_random = random_encoder_like(videomae_ckpt, out_dir / "videomae_random.pt")
        found |= {
            "videomae SSL lstm": ["track_a_videomae", "--encoder-ckpt", str(videomae_ckpt), "--head", "lstm"],
            "videomae random lstm": ["track_a_videomae", "--encoder-ckpt", str(videomae_random), "--head", "lstm"],
        }
    if jepa_ckpt is not None:
        jepa_random = random_encoder_like(jepa_ckpt, out_dir / "jepa_random.pt")
        found |= {
            "jepa SSL attn": ["track_a_jepa", "--encoder-ckpt", str(jepa_ckpt), "--head", "attn"],
            "jepa random attn": ["track_a_jepa", "--encoder-ckpt", str(jepa_random), "--head", "attn"],
        }
    return found


def run_case(name: str, args: list[str], data: Path, out_dir: Path, train_flags: list[str]) -> dict:
    slug = name.replace(" ", "_").replace("+", "")
    metrics = out_dir / f"{slug}.json"
    command = [sys.executable, "-m", f"whatnext.finetune.{args[0]}", "--data", str(data), *args[1:], "--fit", "train",
               "--out", str(out_dir / f"{slug}.pt"), "--metrics", str(metrics), *train_flags]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(out_dir / f"{slug}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(metrics.read_text())
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "top1": result["val_top1"], "top5": result["val_top5"], "majority": result["val_majority_top1"],
        "top1_by_epoch": [round(e["stop_top1"], 3) for e in result["epochs"]],  # on the stop split carved from train
    }


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--mae2d-ckpt", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="MAE-2D SSL encoder (mae2d cases).")
@click.option("--videomae-ckpt", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="VideoMAE SSL encoder (videomae cases).")
@click.option("--jepa-ckpt", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Video-JEPA SSL encoder (jepa cases).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--max-epochs", "epochs", type=int, default=6, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--only", multiple=True, help="Run only the cases whose name contains this text (repeatable).")
@click.option("--extra", multiple=True, help="Extra flag for every case, e.g. --extra=--crop-min=0.8 (repeatable).")
def main(data, mae2d_ckpt, videomae_ckpt, jepa_ckpt, out_dir, epochs, batch_size, lr, threads, seed, only, extra):
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = ["--max-epochs", str(epochs), "--batch-size", str(batch_size), "--lr", str(lr), "--threads", str(threads),
             "--seed", str(seed), "--warmup-epochs", "1", *extra]
    print(f"data {data}, flags {' '.join(flags)}\n")
    print("| case | val top-1 | val top-5 | majority | top-1 / majority | stop-split top-1 by epoch | wall s | CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for name, args in cases(mae2d_ckpt, videomae_ckpt, jepa_ckpt, out_dir).items():
        if only and not any(text in name for text in only):
            continue
        r = run_case(name, args, data, out_dir, flags)
        print(f"| {name} | {r['top1']:.3f} | {r['top5']:.3f} | {r['majority']:.3f} | {r['top1'] / r['majority']:.1f}x "
              f"| {r['top1_by_epoch']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
