"""The one script to run on a GPU machine: every figure the SLURM plan needs, measured (10 minutes at most).

    python bench/gpu_check.py --out gpu_check --print-hours      # CUDA, one device
    python bench/gpu_check.py --dry --out /tmp/gpu_check          # CPU, tiny sizes: checks the script itself

It generates a small data set at the paper's frame size (224 px JPEGs in the challenge format), then for
each GPU rule of the paper graph builds the stage's own model, data loader and trainer (SSL: MAE-2D
ViT-B/16, VideoMAE ViT-B/16 and ViT-S/16; finetuning: the cascade's ViT-B with the attn head, MAE-2D
ViT-B perceiver, ViT-S perceiver, a from-scratch EfficientFormer-L1; ``cache_probs``: five-crop + flip
TTA, 10 views a clip) and times steps at each precision (the rules' ``auto`` first, then the others
while the time budget lasts): steps/s, clips/s, seconds per unit of work (a clip-epoch of training, a
clip-view of inference), peak GPU memory, and the loader's share of the step time (time spent waiting
for the next batch over the whole step, with the paper's 8 loader workers). Training steps go through
the trainer's own step (autocast, gradient scaler, fused AdamW, TF32, channels_last); one more row tries
``--compile``, and with two or more GPUs one row runs the SSL step data-parallel on 2 ranks
(:mod:`whatnext.runtime.launch`), else that row says it was skipped. One row checks the retry after a CUDA
out-of-memory error (:func:`micro_batch_row`): on the cascade's finetuning model, one optimiser step at a
quarter micro-batch against the whole batch (gradient difference; weight difference in learning rates,
large only where a gradient near 0 changes sign, as AdamW's first step is about lr x its sign; peak
memory), then the retry chain
itself under a memory cap between the two peaks: a run that ran out records ``cuda_oom`` and its
micro-batch, and the retry policy's next micro-batch completes the run from the checkpoint.

Writes under ``--out``:

- ``gpu_check.tsv``: one row per rule, model and precision (status ``ok``, ``oom``, ``skipped: ...``; the
  micro-batch row's figures in ``note``);
- ``benchmarks/<rule's benchmark path>.tsv``: one file per rule (per SSL family), in the format of the
  rules' ``benchmark:`` files, for one job of the paper graph at the ``auto`` precision: column ``s`` is
  the job's projected seconds (its units of work x the measured seconds per unit: training steps or
  inference only; start-up and per-epoch validation are not in it). Copy the folder into
  ``results/paper/benchmarks`` and workflow_scripts/time_limits.py sizes every job of the rule from it.

``--print-hours`` then prints the paper plan's GPU-hours per rule from these measurements beside the
planning figures of ``profiles/slurm/config.yaml`` (``ms_per_unit``, what the plan uses before any
benchmark exists). ``--hours-only`` prints that table from an earlier run's ``gpu_check.tsv``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from whatnext.data.class_table import load_class_table  # noqa: E402
from whatnext.data.clip_batches import collate_clips  # noqa: E402
from whatnext.data.clip_normalise import ClipNormaliser  # noqa: E402
from whatnext.data.norm_stats import compute_norm_stats  # noqa: E402
from whatnext.data.synth import class_counts, generate  # noqa: E402
from whatnext.data.tta import TTAViews  # noqa: E402
from whatnext.data.zip_dataset import ClipDataset  # noqa: E402
from whatnext.finetune import evaluation  # noqa: E402
from whatnext.finetune.augment import STANDARD, train_augmenter  # noqa: E402
from whatnext.finetune.driver import FinetuneObjective, classifier_config  # noqa: E402
from whatnext.finetune.losses import TaskLoss  # noqa: E402
from whatnext.finetune.optim import layer_decay_groups  # noqa: E402
from whatnext.finetune.training_sets import open_training_set  # noqa: E402
from whatnext.models import build_model  # noqa: E402
from whatnext.runtime.atomic import atomic_path, write_json  # noqa: E402
from whatnext.runtime.outcome import read_runs, recorded  # noqa: E402
from whatnext.runtime.precision import Acceleration, resolve_precision  # noqa: E402
from whatnext.runtime.trainer import CudaOutOfMemory, Trainer, TrainOptions  # noqa: E402
from whatnext.ssl.cascade import encoder_config, open_generation  # noqa: E402
from whatnext.ssl.methods import METHODS  # noqa: E402
from whatnext.tasks import WHATNEXT  # noqa: E402
from workflow_scripts.member_table import member_table, parse_member_id  # noqa: E402
from workflow_scripts.retry_policy import retry_plan  # noqa: E402
from workflow_scripts.time_limits import job_units  # noqa: E402

PAPER_CONFIG = REPO / "configs" / "paper.yaml"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
SUMMARY = "gpu_check.tsv"
COMPILE_MIN = 2.5  # minutes of budget the --compile row needs (inductor compiles the blocks first)
SUMMARY_FIELDS = ("rule", "job", "arch", "precision", "batch", "workers", "steps", "steps_per_s", "clips_per_s",
                  "s_per_unit", "peak_mem_mb", "loader_share", "status", "note")
# Snakemake's benchmark columns (time_limits reads ``s``), then what this script adds.
BENCHMARK_FIELDS = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out", "mean_load", "cpu_time",
                    "precision", "steps_per_s", "clips_per_s", "s_per_unit", "peak_mem_mb", "loader_share", "measured_by")


@dataclass(frozen=True)
class Case:
    """One rule's representative job: its model and the wildcards of a paper-graph job it stands for."""

    rule: str
    arch: str
    wildcards: dict
    head: str = "attn"
    family: str | None = None  # SSL method (mae2d / videomae, whatnext.ssl.methods) of ssl_pretrain cases

    @property
    def job(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.wildcards.items())

    def benchmark_path(self) -> str:
        """The job's benchmark file, relative to ``{results}/benchmarks`` (as rules/*.smk write it)."""
        w = self.wildcards
        if self.rule == "ssl_pretrain":
            return f"ssl/{w['family']}/gen{w['gen']}.tsv"
        if self.rule == "cache_probs":
            return f"cache_probs/{w['member']}/{w['fit']}.tsv"
        if self.rule == "finetune_cascade":
            return f"finetune/cascade-g{w['gen']}-{w['head']}-r{w['round']}/{w['fit']}.tsv"
        family = self.rule.removeprefix("finetune_")
        return f"finetune/{family}-{w['name']}/{w['fit']}.tsv"


def paper_cases(archs: dict[str, str]) -> list[Case]:
    """The rules of the paper graph (``archs`` maps a role to an encoder, so --dry can swap in tiny ones)."""
    return [
        Case("ssl_pretrain", archs["vit_b_tubelet"], {"family": "cascade", "gen": "1"}, family="videomae"),
        Case("ssl_pretrain", archs["vit_b_mae2d"], {"family": "mae2d", "gen": "1"}, family="mae2d"),
        Case("ssl_pretrain", archs["vit_s_tubelet"], {"family": "videomae_s", "gen": "1"}, family="videomae"),
        Case("finetune_cascade", archs["vit_b_tubelet"], {"gen": "6", "head": "attn", "round": "0", "fit": "train"}),
        Case("finetune_mae2d", archs["vit_b_mae2d"], {"name": "m4a", "fit": "train"}, head="perceiver"),
        Case("finetune_videomae", archs["vit_s_tubelet"], {"name": "m5p", "fit": "train"}, head="perceiver"),
        Case("finetune_scratch", archs["scratch"], {"name": "efficientformer_l1", "fit": "train"}),
        Case("cache_probs", archs["vit_b_tubelet"], {"member": "cascade-g6-attn-r0", "fit": "train"}),
    ]


PAPER_ARCHS = {"vit_b_tubelet": "videomae_vit_b16", "vit_b_mae2d": "mae2d_vit_b16", "vit_s_tubelet": "videomae_vit_s16",
               "scratch": "efficientformer_l1"}
DRY_ARCHS = {"vit_b_tubelet": "videomae_vit_tiny", "vit_b_mae2d": "mae2d_vit_tiny", "vit_s_tubelet": "videomae_vit_tiny",
             "scratch": "conv2d_tiny"}


@dataclass
class Settings:
    """Sizes of a run: the paper's on CUDA, tiny ones for --dry."""

    img_size: int
    batch: int  # training clips per step (the paper config's)
    infer_batch: int  # cache_probs clips per forward pass (the CLI's default)
    workers: int
    warmup: int
    steps: int
    synth_scale: float
    precisions: list[str]
    archs: dict = field(default_factory=dict)


def settings_for(dry: bool, device: torch.device) -> Settings:
    if dry:
        return Settings(img_size=32, batch=4, infer_batch=4, workers=0, warmup=1, steps=2, synth_scale=0.003,
                        precisions=["fp32", "bf16"], archs=DRY_ARCHS)
    precisions = ["fp32", "fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]
    return Settings(img_size=224, batch=64, infer_batch=32, workers=8, warmup=3, steps=10, synth_scale=0.02,
                    precisions=precisions, archs=PAPER_ARCHS)


# ---------------------------------------------------------------- measuring


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since :func:`reset_peak` (CUDA), or this process's peak RSS (CPU), in MB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_trainer(case: Case, data: Path, s: Settings, precision: str, device: torch.device, compile: bool) -> Trainer:
    """The trainer the rule's CLI would build for ``case`` (no validation, no resume dir), long enough for the run."""
    needed = s.warmup + s.steps

    def options(clips: int) -> TrainOptions:
        epochs = math.ceil(needed / max(1, clips // s.batch))
        return TrainOptions(seed=0, max_epochs=epochs, batch_size=s.batch, lr=1e-4, warmup_epochs=0.0, workers=s.workers,
                            device=str(device), precision=precision, compile=compile)

    if case.rule == "ssl_pretrain":
        method = METHODS[case.family]
        clips = len(ClipDataset(data, "train"))
        settings = {setting.name: setting.default for setting in method.settings}
        return open_generation(method, data=data, arch=case.arch, img_size=s.img_size, init_encoder=None,
                               settings=settings, splits=("train",), train=options(clips)).trainer
    dataset = open_training_set(data, "train", load_class_table().num_classes, None)
    scratch = case.rule == "finetune_scratch"  # its recipe: no drop path, no layer decay
    config = classifier_config(encoder_config(case.arch, s.img_size, {}), case.head, 0.0 if scratch else 0.1)
    torch.manual_seed(0)
    classifier = build_model(config)
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    objective = FinetuneObjective(classifier, (), TaskLoss(WHATNEXT, "ce", 0.1), train_augmenter(s.img_size, STANDARD, normaliser))
    train = options(len(dataset))
    layer_decay = 1.0 if scratch else 0.75
    return Trainer(objective, dataset, lambda model, batch: model.loss(batch), train, collate_fn=collate_clips,
                   groups=layer_decay_groups(objective, train.lr, train.weight_decay, layer_decay, "classifier.encoder."))


def measure_training(trainer: Trainer, s: Settings) -> dict:
    """Warm up, then time ``s.steps`` steps of the trainer (the loader's wait timed apart)."""
    device = trainer.device
    batches = trainer._batch_iterator()
    for _ in range(s.warmup):
        trainer._train_step(next(batches))
    synchronise(device)
    reset_peak(device)
    waited = total = 0.0
    clips = 0
    for _ in range(s.steps):
        started = time.perf_counter()
        batch = next(batches)
        loaded = time.perf_counter()
        _, n = trainer._train_step(batch)  # ends with loss.item(): the step is done on the device
        synchronise(device)
        waited, total, clips = waited + loaded - started, total + time.perf_counter() - started, clips + n
    return {"steps": s.steps, "steps_per_s": s.steps / total, "clips_per_s": clips / total, "s_per_unit": total / clips,
            "peak_mem_mb": peak_mb(device), "loader_share": waited / total}


class TimedLoader(torch.utils.data.DataLoader):
    """A DataLoader that adds the time spent waiting for each batch to ``TimedLoader.waited``."""

    waited = 0.0

    def __iter__(self):
        batches = super().__iter__()
        while True:
            started = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            TimedLoader.waited += time.perf_counter() - started
            yield batch


def measure_cache_probs(case: Case, data: Path, s: Settings, precision: str, device: torch.device, compile: bool) -> dict:
    """Time ``cache_probs``'s prediction (five-crop + flip views) over the val clips, after one warm-up batch
    (its test clips cost the same per clip-view)."""
    torch.manual_seed(0)
    model = build_model(classifier_config(encoder_config(case.arch, s.img_size, {}), case.head, 0.0))
    accel = Acceleration(device, precision, compile)
    model = accel.prepare(model)
    views = TTAViews(s.img_size, five_crop=True, flip=True)
    normaliser = ClipNormaliser.from_stats_file(data / "norm_stats.json")
    dataset = ClipDataset(data, "val", transform=views)
    warm = torch.utils.data.Subset(dataset, range(min(len(dataset), s.infer_batch)))
    evaluation.predict_probs(model, warm, views, normaliser, batch_size=s.infer_batch, accel=accel)
    synchronise(device)
    reset_peak(device)
    plain, evaluation.DataLoader = evaluation.DataLoader, TimedLoader
    TimedLoader.waited = 0.0
    try:
        started = time.perf_counter()
        ids, _ = evaluation.predict_probs(model, dataset, views, normaliser, batch_size=s.infer_batch, workers=s.workers,
                                          accel=accel)
        synchronise(device)
        total = time.perf_counter() - started
    finally:
        evaluation.DataLoader = plain
    batches = math.ceil(len(ids) / s.infer_batch)
    return {"steps": batches, "steps_per_s": batches / total, "clips_per_s": len(ids) / total,
            "s_per_unit": total / (len(ids) * len(views.flipped)), "peak_mem_mb": peak_mb(device),
            "loader_share": TimedLoader.waited / total}


def measure(case: Case, data: Path, s: Settings, precision: str, device: torch.device, compile: bool = False) -> dict:
    """One row of the summary: the case at ``precision`` (status ``oom`` when the card runs out of memory,
    ``failed: ...`` with the error for anything else, so one broken path does not cost the other rows)."""
    row = {"rule": case.rule, "job": case.job, "arch": case.arch, "precision": precision + ("+compile" if compile else ""),
           "batch": s.infer_batch if case.rule == "cache_probs" else s.batch, "workers": s.workers}
    try:
        if case.rule == "cache_probs":
            result = measure_cache_probs(case, data, s, precision, device, compile)
        else:
            result = measure_training(training_trainer(case, data, s, precision, device, compile), s)
    except torch.cuda.OutOfMemoryError:
        reset_peak(device)
        return row | {"status": "oom"}
    except Exception as err:  # noqa: BLE001 (reported in the row; the run goes on)
        reset_peak(device)
        return row | {"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"}
    return row | result | {"status": "ok"}


class FixedClips(torch.utils.data.Dataset):
    """``count`` fixed normalised clips float [T, C, H, W] with labels (a step without random draws)."""

    def __init__(self, count: int, frames: int, size: int, classes: int):
        generator = torch.Generator().manual_seed(0)
        self.clips = torch.randn(count, frames, 3, size, size, generator=generator)
        self.labels = torch.randint(0, classes, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i):
        return self.clips[i], self.labels[i]


def micro_trainer(config: dict, data: torch.utils.data.Dataset, s: Settings, device: torch.device, micro_batch: int,
                  resume_dir: Path | None = None, loss_fn=None) -> Trainer:
    """The cascade classifier (no drop path) on fixed clips under plain cross-entropy, one epoch, ``s.batch``
    clips a step at ``micro_batch`` per pass (0: the whole batch)."""
    torch.manual_seed(0)
    train = TrainOptions(seed=0, max_epochs=1, batch_size=s.batch, micro_batch=micro_batch, lr=1e-4, device=str(device),
                         resume_dir=resume_dir, checkpoint_every=1, safety_margin_min=0.0)
    plain = lambda model, batch: torch.nn.functional.cross_entropy(model(batch[0]), batch[1])  # noqa: E731
    return Trainer(build_model(config), data, loss_fn or plain, train)


def one_step(config, data, s, device, micro_batch) -> tuple[list[torch.Tensor], list[torch.Tensor], float, float]:
    """Gradients and weights after one step at ``micro_batch``, its peak GPU memory (MB, reserved) and seconds."""
    trainer = micro_trainer(config, torch.utils.data.Subset(data, range(s.batch)), s, device, micro_batch)
    reset_peak(device)
    started = time.perf_counter()
    trainer.fit()
    synchronise(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else peak_mb(device)
    grads = [p.grad.detach().float().cpu() for p in trainer.model.parameters() if p.grad is not None]
    weights = [p.detach().float().cpu() for p in trainer.model.parameters()]
    del trainer
    reset_peak(device)
    return grads, weights, peak, seconds


def retry_chain(config, data, s, device, out: Path, cap_mb: float, attempts: int = 4) -> list[str]:
    """Attempts of one 2-step run as the workflow retries it, each at the micro-batch the retry policy reads
    from the outcome file: ``["64 oom", "32 ok"]``. The cap: a CUDA memory fraction (reserved MB); on the
    CPU (--dry) a loss that raises torch's CUDA out-of-memory error for passes of more than ``cap_mb`` clips."""
    outcome, resume = out / "micro_batch" / "outcome.json", out / "micro_batch" / "resume"
    outcome.unlink(missing_ok=True)
    plain = lambda model, batch: torch.nn.functional.cross_entropy(model(batch[0]), batch[1])  # noqa: E731

    def capped(model, batch):
        if len(batch[0]) > cap_mb:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated cap, --dry)")
        return plain(model, batch)

    if device.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(cap_mb * 2**20 / torch.cuda.get_device_properties(device).total_memory, device)
    chain = []
    try:
        for attempt in range(1, attempts + 1):
            micro = retry_plan(str(outcome), attempt).micro_batch
            trainer = micro_trainer(config, torch.utils.data.Subset(data, range(2 * s.batch)), s, device, micro, resume,
                                    loss_fn=capped if device.type == "cpu" else plain)
            try:
                with recorded(outcome):
                    trainer.resume_if_possible()
                    start = trainer.step
                    trainer.fit()
                chain.append(f"{trainer.micro_batch} ok from step {start}")
                trainer.clear_resume_state()
                break
            except CudaOutOfMemory as oom:
                chain.append(f"{oom.micro_batch} oom at step {oom.step}")
            finally:
                del trainer
                reset_peak(device)
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    recorded_as = [run["outcome"] + (f" {run['micro_batch']}" if "micro_batch" in run else "") for run in read_runs(outcome)]
    return [f"{step} (recorded: {record})" for step, record in zip(chain, recorded_as)]


def micro_batch_row(case: Case, s: Settings, device: torch.device, out: Path) -> dict:
    """The retry after a CUDA out-of-memory error (see the module docstring), on ``case``'s model at ``auto``."""
    row = {"rule": case.rule, "job": case.job, "arch": case.arch, "precision": "auto (micro-batch)", "batch": s.batch,
           "workers": 0, "steps": 1}
    try:
        config = classifier_config(encoder_config(case.arch, s.img_size, {}), case.head, 0.0)
        data = FixedClips(2 * s.batch, config.get("num_frames", 4), s.img_size, config["num_classes"])
        micro = max(1, s.batch // 4)
        whole_grads, whole_weights, whole_peak, whole_s = one_step(config, data, s, device, 0)
        micro_grads, micro_weights, micro_peak, micro_s = one_step(config, data, s, device, micro)
        diff = math.sqrt(sum(float((a - b).pow(2).sum()) for a, b in zip(whole_grads, micro_grads)))
        norm = math.sqrt(sum(float(a.pow(2).sum()) for a in whole_grads))
        moved = max(float((a - b).abs().max()) for a, b in zip(whole_weights, micro_weights)) / 1e-4  # in lr
        cap = (whole_peak + micro_peak) / 2 if device.type == "cuda" else s.batch // 2
        chain = retry_chain(config, data, s, device, out, cap)
    except Exception as err:  # noqa: BLE001 (reported in the row; the run goes on)
        reset_peak(device)
        return row | {"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"}
    note = (f"micro {micro} of {s.batch}: |grad diff|/|grad| {diff / max(norm, 1e-30):.2e}, max |weight diff| {moved:.2f} lr; peak {whole_peak:.0f} -> {micro_peak:.0f} MB, step {whole_s:.2f} -> {micro_s:.2f} s; "
            f"retries under a {cap:.0f} {'MB' if device.type == 'cuda' else 'clip'} cap: {', '.join(chain)}")
    return row | {"peak_mem_mb": micro_peak, "status": "ok" if " ok from " in chain[-1] else "failed: retries ran out",
                  "note": note}


def ddp_row(case: Case, data: Path, s: Settings, out: Path, dry: bool) -> dict:
    """The SSL case data-parallel on 2 ranks (same global batch), or a skipped row without 2 GPUs."""
    row = {"rule": case.rule, "job": case.job, "arch": case.arch, "precision": "auto (DDP x2)", "batch": s.batch,
           "workers": s.workers}
    if dry or torch.cuda.device_count() < 2:
        return row | {"status": "skipped: needs 2 CUDA devices" if not dry else "skipped: --dry"}
    result = out / "ddp_rank0.json"
    command = [sys.executable, "-m", "whatnext.runtime.launch", "--nproc", "2", "--", sys.executable, __file__,
               "--ddp-rank", "--data", str(data), "--out", str(out)]
    done = subprocess.run(command, env=os.environ | {"PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not result.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
        return row | {"status": f"failed: exit {done.returncode}: {tail[0][:200]}"}
    return row | json.loads(result.read_text()) | {"status": "ok"}


def run_ddp_rank(data: Path, out: Path) -> None:
    """Inside one rank of :func:`ddp_row`: measure the SSL case; rank 0 writes its figures."""
    from whatnext.runtime.distributed import close_process_group, init_process_group

    ranks = init_process_group("auto")
    device = torch.device("cuda", ranks.local_rank)
    s = settings_for(False, device)
    case = paper_cases(s.archs)[0]
    result = measure_training(training_trainer(case, data, s, "auto", device, False), s)
    if ranks.main:
        write_json(out / "ddp_rank0.json", result)
    close_process_group()


# ---------------------------------------------------------------- outputs


def write_tsv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t", extrasaction="ignore", restval="NA")
        writer.writeheader()
        writer.writerows(rows)  # floats in full (repr): --hours-only reads back the very figures


def paper_config() -> dict:
    return yaml.safe_load(PAPER_CONFIG.read_text(encoding="utf-8"))


def paper_counts() -> dict[str, int]:
    """Clips per split of the challenge data (the generator's scale 1 reproduces them)."""
    return {split: sum(counts) for split, counts in class_counts(load_class_table(), 1.0).items()}


def benchmark_row(case: Case, row: dict, config: dict, counts: dict) -> dict:
    """The benchmark-format row of ``case``'s paper job from a measured summary row."""
    seconds = job_units(case.rule, case.wildcards, config, counts) * float(row["s_per_unit"])
    hms = f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"
    return {"s": seconds, "h:m:s": hms, "measured_by": "bench/gpu_check.py"} | {
        key: row[key] for key in ("precision", "steps_per_s", "clips_per_s", "s_per_unit", "peak_mem_mb", "loader_share")}


def case_rates(rows: list[dict], precision: str) -> dict[tuple[str, str], float]:
    """Measured seconds per unit by (rule, case job) at ``precision`` (rows that ran)."""
    return {(r["rule"], r["job"]): float(r["s_per_unit"]) for r in rows if r["status"] == "ok" and r["precision"] == precision}


def plan_jobs(config: dict) -> list[tuple[str, dict, str | None]]:
    """Every GPU job of the paper graph as (rule, wildcards, SSL arch or None)."""
    jobs = []
    for family, section in config["ssl"].items():
        jobs += [("ssl_pretrain", {"family": family, "gen": str(g)}, section["arch"]) for g in range(1, section["generations"] + 1)]
    fits = ["train", "trainval"] if config.get("twins") else ["train"]
    for member_id in member_table(config):
        family, wildcards = parse_member_id(member_id)
        jobs += [(f"finetune_{family}", wildcards | {"fit": fit}, None) for fit in fits]
        jobs += [("cache_probs", {"member": member_id, "fit": fit}, None) for fit in fits]  # twins: cache_probs_twin
    return jobs


def hours_table(rows: list[dict], cases: list[Case]) -> str:
    """Paper-plan GPU-hours per rule: profile planning figures vs measured (auto precision, and fp32)."""
    config, counts = paper_config(), paper_counts()
    planning = yaml.safe_load(SLURM_PROFILE.read_text(encoding="utf-8"))["config"]["resources"]
    auto = rows[0]["precision"]  # the run measures every case at the auto precision first
    measured = {p: case_rates(rows, p) for p in (auto, "fp32")}
    rule_case = {case.rule: case.job for case in cases if case.rule != "ssl_pretrain"}
    family_case = {case.wildcards["family"]: case.job for case in cases if case.rule == "ssl_pretrain"}
    totals: dict[str, list[float]] = {}
    for rule, wildcards, _ in plan_jobs(config):
        units = job_units(rule, wildcards, config, counts)
        job = family_case.get(wildcards["family"]) if rule == "ssl_pretrain" else rule_case.get(rule)
        guess = (planning["overhead_min"] * 60 + units * planning["ms_per_unit"][rule] / 1000) / 3600
        found = [measured[p].get((rule, job)) for p in (auto, "fp32")]
        entry = totals.setdefault(rule, [0, 0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += guess
        entry[2] += units * found[0] / 3600 if found[0] is not None else math.nan
        entry[3] += units * found[1] / 3600 if found[1] is not None else math.nan
    lines = [f"| rule | jobs | planning GPU-h (ms_per_unit) | measured GPU-h at {auto} | measured GPU-h at fp32 | measured/planning |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for rule, (jobs, guess, fast, slow) in totals.items():
        lines.append(f"| {rule} | {jobs} | {guess:.1f} | {fast:.1f} | {slow:.1f} | {fast / guess:.2f} |")
    sums = [sum(v[i] for v in totals.values()) for i in range(4)]
    lines.append(f"| total | {sums[0]:.0f} | {sums[1]:.1f} | {sums[2]:.1f} | {sums[3]:.1f} | {sums[2] / sums[1]:.2f} |")
    lines.append("\nMeasured: training steps / inference only (no start-up, no per-epoch validation); finetune_scratch "
                 "and cache_probs use one measured model for every member (see gpu_check.tsv); no headroom.")
    return "\n".join(lines)


def read_summary(out: Path) -> list[dict]:
    with open(out / SUMMARY, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def make_data(folder: Path, s: Settings) -> Path:
    """A generated data dir at the run's frame size (kept between runs in ``--out``)."""
    if not (folder / "norm_stats.json").is_file():
        generate(folder, scale=s.synth_scale, size=s.img_size, seed=0, progress=False)
        write_json(folder / "norm_stats.json", compute_norm_stats(folder))
    return folder


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the TSVs (and the generated data).")
@click.option("--dry", is_flag=True, help="CPU, tiny sizes (32 px, tiny models, 2 steps): checks the script, in well under a minute.")
@click.option("--print-hours", is_flag=True, help="Print the paper plan's GPU-hours from the measurements beside the planning figures.")
@click.option("--hours-only", is_flag=True, help="Only print the GPU-hours table from an earlier run's gpu_check.tsv in --out.")
@click.option("--budget-min", type=float, default=8.0, show_default=True,
              help="Start no measurement after this many minutes (the --compile row needs 2.5 more).")
@click.option("--ddp-rank", is_flag=True, hidden=True)
@click.option("--data", type=click.Path(path_type=Path), hidden=True)
def main(out, dry, print_hours, hours_only, budget_min, ddp_rank, data):
    """Measure every GPU rule of the paper graph at each precision; write gpu_check.tsv and benchmark TSVs."""
    if ddp_rank:
        return run_ddp_rank(data, out)
    device = torch.device("cpu" if dry else "cuda")
    s = settings_for(dry, device)
    cases = paper_cases(s.archs)
    if hours_only:
        click.echo(hours_table(read_summary(out), cases))
        return
    if not dry and not torch.cuda.is_available():
        raise click.UsageError("no CUDA device: run on a GPU machine, or use --dry on the CPU")
    started = time.monotonic()
    if dry:
        torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out / f"data-{s.img_size}px", s)
    auto = resolve_precision("auto", device)
    click.echo(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU (dry)'}; auto precision {auto}; "
               f"data {data} ready after {time.monotonic() - started:.0f} s; fp32 rows use TF32 on CUDA")
    plan = [(case, auto, False) for case in cases] + [(case, p, False) for p in s.precisions if p != auto for case in cases]
    plan.append((cases[0], auto, True))  # --compile on the cascade's SSL step
    rows = []
    for case, precision, compile in plan:
        if compile and dry:
            continue
        if time.monotonic() - started > (budget_min - (COMPILE_MIN if compile else 0)) * 60:
            rows.append({"rule": case.rule, "job": case.job, "arch": case.arch, "precision": precision, "status": "skipped: budget"})
            continue
        row = measure(case, data, s, precision, device, compile)
        rows.append(row)
        click.echo("\t".join(str(row.get(k, "NA")) if not isinstance(row.get(k), float) else f"{row[k]:.4g}" for k in SUMMARY_FIELDS),
                   err=True)
    micro_case = next(case for case in cases if case.rule == "finetune_cascade")
    rows.append(micro_batch_row(micro_case, s, device, out))
    click.echo(f"micro-batch row: {rows[-1]['status']}; {rows[-1].get('note', '')}", err=True)
    rows.append(ddp_row(cases[0], data, s, out, dry))
    write_tsv(out / SUMMARY, SUMMARY_FIELDS, rows)
    config, counts = paper_config(), paper_counts()
    for case in cases:
        row = next((r for r in rows if (r["rule"], r["job"], r["precision"], r["status"]) == (case.rule, case.job, auto, "ok")), None)
        if row is not None:
            write_tsv(out / "benchmarks" / case.benchmark_path(), BENCHMARK_FIELDS, [benchmark_row(case, row, config, counts)])
    click.echo(f"wrote {out / SUMMARY} and {len(cases)} benchmark files under {out / 'benchmarks'} "
               f"in {time.monotonic() - started:.0f} s")
    if print_hours:
        click.echo(hours_table(rows, cases))


if __name__ == "__main__":
    main()
