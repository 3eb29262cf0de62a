"""Does masked pretraining pay at CPU size? (issue 14, points 4 and 5; run on demand, not in CI.)

    python bench/ssl_gain.py --out-dir DIR [--presets classic,handheld] [--seeds 0,1,2] [--budgets 0,10]
        [--archs mae2d,videomae] [--ssl-lr 5e-4] [--ssl-setting target=residual ...] [--ft-epochs 6]
        [--cascade-generations 3 --cascade-epochs 5] [--threads 1]

For every preset (generated at ``--size`` px and ``--scale``, raw frames: no ``clip_residual``), architecture
(the tiny MAE-2D and VideoMAE ViTs) and seed, the same encoder is

- left at its random initialisation (budget 0), or pretrained for each SSL budget (epochs of
  :func:`whatnext.ssl.cascade.run_generation`, one fresh run per budget, on the ``--ssl-splits`` frames), then
- probed frozen (:mod:`whatnext.analysis.feature_probe`: logistic regression on pooled encoder features,
  train -> val), and
- finetuned identically (:func:`whatnext.finetune.driver.finetune_ssl_encoder`, a fixed number of epochs, no
  stop split, scored once on val).

With ``--cascade-generations G`` the bench also runs the cascade (point 5): generation g + 1 reloads generation
g's encoder with a fresh decoder, optimiser and schedule, each under ``--cascade-epochs`` (a budget that ends
before convergence), and each generation is probed and finetuned the same way.

Prints one table (mean +- sd over seeds; the gain columns are paired differences against random init of the
same seed) and writes every run's figures, SSL loss curves included, to ``DIR/ssl_gain.json``. Each run's
result is kept in ``DIR/runs/`` so an interrupted bench resumes where it stopped (keyed by preset, arch, budget,
seed and generation only: a changed option needs a fresh ``DIR``).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from pathlib import Path

import click
import numpy as np
import torch

ARCHS = {  # name -> (encoder, finetune head, SSL method / finetune family)
    "mae2d": ("mae2d_vit_tiny", "perceiver"),
    "videomae": ("videomae_vit_tiny", "lstm"),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cached(path: Path, compute) -> dict:
    """The JSON at ``path``, or ``compute()`` written there (atomically) first."""
    from whatnext.runtime.atomic import write_json

    if path.is_file():
        return json.loads(path.read_text())
    started = cpu_seconds()
    result = compute()
    result["cpu_s"] = cpu_seconds() - started
    write_json(path, result)
    return result


def make_data(root: Path, preset: str, size: int, scale: float) -> Path:
    """Generated data dir of ``preset`` at ``size`` px (seed 0) with its normalisation statistics."""
    from whatnext.data.norm_stats import compute_norm_stats
    from whatnext.data.synth import generate
    from whatnext.runtime.atomic import write_json

    data = root / f"data-{preset}-{size}px-{scale}"
    if not (data / "norm_stats.json").is_file():
        generate(data, scale, size=size, seed=0, preset=preset, progress=False)
        write_json(data / "norm_stats.json", compute_norm_stats(data))
    return data


def random_encoder(arch: str, size: int, seed: int, out: Path) -> Path:
    """An encoder checkpoint of ``arch`` with seeded random weights (the budget-0 row)."""
    from whatnext.models import build_encoder
    from whatnext.runtime.checkpoint import save_checkpoint
    from whatnext.ssl.cascade import encoder_config

    if not out.is_file():
        config = encoder_config(ARCHS[arch][0], size, {})
        torch.manual_seed(seed)
        save_checkpoint(out, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                        meta={"family": arch, "random_init": True, "seed": seed})
    return out


def pretrain(arch: str, data: Path, size: int, epochs: int, seed: int, opts: dict, out: Path,
             init: Path | None = None) -> dict:
    """One SSL generation through the cascade's code path; returns its metrics (loss per epoch, probe loss)."""
    from whatnext.runtime.trainer import TrainOptions
    from whatnext.ssl.cascade import run_generation
    from whatnext.ssl.methods import METHODS

    method = METHODS[arch]
    settings = {s.name: s.default for s in method.settings} | opts["ssl_settings"]
    train = TrainOptions(seed=seed, max_epochs=epochs, min_epochs=epochs, batch_size=opts["ssl_batch_size"],
                         lr=opts["ssl_lr"], weight_decay=0.05, warmup_epochs=min(opts["ssl_warmup"], epochs / 4),
                         threads=opts["threads"], device=opts["device"])
    run_generation(method, data=data, arch=ARCHS[arch][0], img_size=size, init_encoder=init, out=out,
                   metrics=out.with_suffix(".json"), settings=settings, splits=opts["ssl_splits"], train=train)
    metrics = json.loads(out.with_suffix(".json").read_text())
    return {"ssl_loss": [e["loss"] for e in metrics["epochs"]], "ssl_probe_loss": metrics["probe_loss"]}


def probe(encoder_ckpt: Path, data: Path) -> float:
    """Frozen-feature linear probe top-1 (train -> val) of the checkpoint's encoder."""
    from whatnext.analysis.feature_probe import linear_probe, pooled_features
    from whatnext.data.clip_normalise import ClipNormaliser
    from whatnext.data.zip_dataset import ClipDataset
    from whatnext.models import build_encoder
    from whatnext.runtime.checkpoint import load_checkpoint

    ckpt = load_checkpoint(encoder_ckpt, expected_kind="encoder")
    encoder = build_encoder(ckpt["model_config"])
    encoder.load_state_dict(ckpt["state_dict"])
    size = ckpt["model_config"]["img_size"]
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    train, val = (ClipDataset(data, split, frame_size=size) for split in ("train", "val"))
    return linear_probe(pooled_features(encoder, train, normaliser), train.labels,
                        pooled_features(encoder, val, normaliser), val.labels)


def finetune(arch: str, encoder_ckpt: Path, data: Path, seed: int, opts: dict, out: Path) -> dict:
    """The identical finetune of every row: ``--ft-epochs`` epochs, no stop split; val top-1 once at the end."""
    from whatnext.finetune.driver import FinetuneOptions, finetune_ssl_encoder
    from whatnext.runtime.trainer import TrainOptions

    ft = FinetuneOptions(data=data, head=ARCHS[arch][1], fit="train", out=out, metrics=out.with_suffix(".json"),
                         layer_decay=opts["layer_decay"], drop_path=opts["drop_path"], crop_min=opts["ft_crop_min"],
                         jitter=opts["ft_jitter"], stop_fraction=0.0)
    train = TrainOptions(seed=seed, max_epochs=opts["ft_epochs"], min_epochs=opts["ft_epochs"], batch_size=32,
                         lr=opts["ft_lr"], weight_decay=0.05, warmup_epochs=0.5, threads=opts["threads"], device=opts["device"])
    summary = finetune_ssl_encoder(f"track_a_{arch}", arch, encoder_ckpt, ft, train)
    losses = [e["loss"] for e in json.loads(out.with_suffix(".json").read_text())["epochs"]]
    return {"top1": summary["val_top1"], "majority": summary["val_majority_top1"], "ft_loss": losses}


def evaluate(arch: str, ckpt: Path, data: Path, seed: int, opts: dict, work: Path) -> dict:
    """The frozen probe, and the finetune unless ``--ft-epochs 0`` (probe only)."""
    row = {"probe": probe(ckpt, data)}
    return row | finetune(arch, ckpt, data, seed, opts, work / "ft.pt") if opts["ft_epochs"] > 0 else row


def run_row(kind: str, arch: str, preset: str, data: Path, budget: int, seed: int, opts: dict, root: Path,
            parent: Path | None = None, generation: int = 1) -> dict | None:
    """One (encoder, evaluation) result, cached under ``root/runs`` by (kind, preset, arch, budget, seed,
    generation) only: use a fresh ``--out-dir`` after changing any other option; None with ``--report-only`` when
    the row has not been run. Kind ``budget`` (random init
    when budget is 0) or ``cascade`` (generation ``generation``, seeded from ``parent``)."""
    name = f"{kind}-{preset}-{arch}-e{budget}-s{seed}" + (f"-g{generation}" if kind == "cascade" else "")
    work = root / "runs" / name
    if opts["report_only"] and not (work / "result.json").is_file():
        return None
    work.mkdir(parents=True, exist_ok=True)
    size = opts["size"]

    def compute() -> dict:
        row = {}
        if budget == 0:
            ckpt = random_encoder(arch, size, seed, work / "encoder.pt")
        else:
            ckpt = work / "encoder.pt"
            row |= pretrain(arch, data, size, budget, seed, opts, ckpt, init=parent)
        return row | evaluate(arch, ckpt, data, seed, opts, work)

    return {"kind": kind, "preset": preset, "arch": arch, "budget": budget, "seed": seed, "encoder": str(work / "encoder.pt"),
            **cached(work / "result.json", compute)}


def mean_sd(values: list[float]) -> str:
    """"m +- sd" over seeds (population sd), "m" for one value, "-" for none."""
    if not values:
        return "-"
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def table(rows: list[dict], label) -> list[str]:
    """Markdown rows grouped by (preset, arch, label(row)); gains paired with the budget-0 row of the same seed."""
    base = {(r["preset"], r["arch"], r["seed"]): r for r in rows if r["kind"] == "budget" and r["budget"] == 0}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["arch"], label(r)), []).append(r)
    lines = []
    for (preset, arch, what), rs in groups.items():
        paired = [(r, base.get((preset, arch, r["seed"]))) for r in rs]
        gain = lambda key: mean_sd([r[key] - b[key] for r, b in paired if b is not None and key in r and key in b])  # noqa: E731
        loss = (f"{np.mean([r['ssl_loss'][0] for r in rs]):.3f} -> {np.mean([r['ssl_loss'][-1] for r in rs]):.3f} "
                f"({np.mean([r['ssl_probe_loss'] for r in rs]):.3f})" if "ssl_loss" in rs[0] else "")
        majority = [r["majority"] for r in rs if "majority" in r]
        lines.append(f"| {preset} | {arch} | {what} | {len(rs)} | {loss} | {mean_sd([r['probe'] for r in rs])} | "
                     f"{gain('probe')} | {mean_sd([r['top1'] for r in rs if 'top1' in r])} | {gain('top1')} | "
                     f"{f'{majority[0]:.3f}' if majority else '-'} | {np.mean([r['cpu_s'] for r in rs]):.0f} |")
    return lines


HEADER = ("| preset | arch | encoder | seeds | SSL loss first -> last epoch (fixed-mask probe loss) | probe top-1 | "
          "probe gain | finetune top-1 | finetune gain | majority | CPU s / run |\n"
          "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")


def _settings(ctx, param, values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: give KEY=VALUE")
        try:  # numbers, booleans, lists as JSON; anything else (a name: target=residual, masking=tats) as text
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def _ints(ctx, param, value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


@click.command()
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--presets", default="classic,handheld", show_default=True, help="Generator presets (comma-separated).")
@click.option("--size", default=32, show_default=True, help="Frame side (px) the data is generated at.")
@click.option("--scale", default=0.03, show_default=True, help="Generator scale (0.03: 1,348 / 202 / 207 clips).")
@click.option("--archs", default="mae2d,videomae", show_default=True)
@click.option("--seeds", default="0,1,2", show_default=True, callback=_ints)
@click.option("--budgets", default="0,10", show_default=True, callback=_ints,
              help="SSL epochs (0: random init); the defaults cost about 4,300 CPU-s (35 min of 2 idle cores).")
@click.option("--ssl-lr", default=5e-4, show_default=True)
@click.option("--ssl-batch-size", default=64, show_default=True)
@click.option("--ssl-warmup", default=5.0, show_default=True, help="Warmup epochs (at most a quarter of the run).")
@click.option("--ssl-splits", default="train,val,test", show_default=True, help="Splits whose frames SSL uses.")
@click.option("--ssl-setting", multiple=True, callback=_settings,
              help="A method setting KEY=VALUE (mask_ratio, target, motion_weight, norm_pix, masking, tats_*), repeatable.")
@click.option("--ft-epochs", default=15, show_default=True,
              help="Finetune epochs (0: frozen probe only); the main job's members run 10-15.")
@click.option("--ft-lr", default=1e-3, show_default=True)
@click.option("--ft-crop-min", default=0.8, show_default=True,
              help="Smallest crop (area fraction) of the finetune's augmentation: config.yaml's members' value.")
@click.option("--ft-jitter", default=0.1, show_default=True, help="Colour jitter of the finetune: config.yaml's value.")
@click.option("--layer-decay", default=0.75, show_default=True)
@click.option("--drop-path", default=0.1, show_default=True)
@click.option("--cascade-generations", default=0, show_default=True, help="Cascade generations (0: no cascade rows).")
@click.option("--cascade-epochs", default=5, show_default=True, help="SSL epochs per cascade generation.")
@click.option("--threads", default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device of SSL and finetuning (cpu, cuda, auto).")
@click.option("--report-only", is_flag=True, help="Table the rows already run in --out-dir; run nothing.")
def main(out_dir, presets, size, scale, archs, seeds, budgets, ssl_lr, ssl_batch_size, ssl_warmup, ssl_splits,
         ssl_setting, ft_epochs, ft_lr, ft_crop_min, ft_jitter, layer_decay, drop_path, cascade_generations,
         cascade_epochs, threads, device, report_only):
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(threads)
    opts = {"size": size, "ssl_lr": ssl_lr, "ssl_batch_size": ssl_batch_size, "ssl_warmup": ssl_warmup,
            "ssl_splits": tuple(ssl_splits.split(",")), "ssl_settings": ssl_setting, "ft_epochs": ft_epochs,
            "ft_lr": ft_lr, "ft_crop_min": ft_crop_min, "ft_jitter": ft_jitter, "layer_decay": layer_decay, "drop_path": drop_path, "threads": threads, "device": device,
            "report_only": report_only}
    out_dir.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    rows = []
    for preset in presets.split(","):
        data = out_dir / f"data-{preset}-{size}px-{scale}" if report_only else make_data(out_dir, preset, size, scale)
        for arch in archs.split(","):
            for seed in seeds:
                rows += [row for budget in budgets if (row := run_row("budget", arch, preset, data, budget, seed, opts, out_dir))]
                parent = None
                for generation in range(1, cascade_generations + 1):
                    row = run_row("cascade", arch, preset, data, cascade_epochs, seed, opts, out_dir, parent, generation)
                    if row is None:
                        break
                    rows.append(row | {"generation": generation})
                    parent = Path(row["encoder"])
    report = {"options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}, "rows": rows,
              "wall_s": time.perf_counter() - started, "cpu_s": cpu_seconds() - cpu_started}
    (out_dir / "ssl_gain.json").write_text(json.dumps(report, indent=1))
    print(f"options: {json.dumps(report['options'])}\n")
    print(HEADER)
    budget_rows = [r for r in rows if r["kind"] == "budget"]
    print("\n".join(table(budget_rows, lambda r: "random init" if r["budget"] == 0 else f"SSL {r['budget']} ep")))
    cascade = [r for r in rows if r["kind"] == "cascade"]
    if cascade:
        random_init = [r for r in budget_rows if r["budget"] == 0]
        print(f"\nCascade: generation g + 1 reloads generation g's encoder, {cascade_epochs} SSL epochs each\n\n{HEADER}")
        print("\n".join(table(random_init + cascade, lambda r: "random init" if r["kind"] == "budget" else
                               f"cascade g{r['generation']} ({cascade_epochs} ep/gen)")))
    print(f"\n{len(rows)} runs (cached ones included), this call: {report['wall_s']:.0f} s wall, "
          f"{report['cpu_s']:.0f} CPU-s")


if __name__ == "__main__":
    main()
