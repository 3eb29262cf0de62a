"""Efficiency of a run, per rule: requested against used time, memory and CPU, GPU use, and the next limits.

    python -m workflow_scripts.efficiency --configfile configs/paper.yaml [--profile profiles/slurm] [--csv FILE]
    snakemake --profile profiles/slurm --configfile configs/paper.yaml -- efficiency_report   # the same, for the HTML report

One dry run (``snakemake -n --forceall`` with the profile, parsed as workflow_scripts.slurm_plan parses
it) lists every job of the graph with its benchmark file and the resources the next run would request:
its ``runtime`` is the limit workflow_scripts/time_limits.py now chooses from the benchmark files on disk.
What each job used comes from:

- Slurm's accounting (``sacct``) for the Slurm job ids its runs recorded in their outcome file (the GPU
  rules, :mod:`whatnext.runtime.outcome`), the last run of each job: Elapsed, Timelimit, ReqMem, AllocCPUS,
  TotalCPU, and MaxRSS (largest over the job's steps);
- else its ``benchmark:`` file (seconds, max RSS, CPU seconds; the last repeat), against the dry run's
  memory and CPU requests (this run's own time limit is then unknown: ``-``);
- GPU utilisation: what ``nvidia-smi`` sampled inside the job (the outcome file's ``gpu``; none without
  ``nvidia-smi``).

Per rule: jobs measured, wall minutes (median, max), the largest time limit and the share of it used,
requested and peak memory, CPU efficiency (CPU seconds / (wall seconds x CPUs), over all its jobs), mean
GPU utilisation and peak GPU memory, and the next run's limits (median, max). Rules no job of which has
run yet are left out. ``--csv`` writes the same table (the HTML report shows it, rule efficiency_report).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import click
import yaml

from whatnext.runtime.outcome import read_runs
from workflow_scripts.retry_policy import outcome_file
from workflow_scripts.slurm_plan import PlannedJob, parse_dry_run, profile_config_entries

SACCT_FIELDS = ("JobID", "State", "Elapsed", "Timelimit", "ReqMem", "AllocCPUS", "TotalCPU", "MaxRSS")
COLUMNS = ("rule", "jobs", "source", "wall_min_median", "wall_min_max", "limit_min_max", "time_used_pct",
           "mem_req_mb", "mem_used_mb_max", "mem_used_pct", "cpus", "cpu_eff_pct", "gpu_util_pct", "gpu_mem_mb_max",
           "next_limit_min_median", "next_limit_min_max")


@dataclass
class Usage:
    """What one job asked for and used (None: not known)."""

    wall_s: float
    cpu_s: float | None
    rss_mb: float | None
    limit_min: float | None
    mem_req_mb: float | None
    cpus: int | None
    source: str  # "sacct" or "benchmark"
    gpu: dict | None = None


# ---------------------------------------------------------------- Slurm's fields


def slurm_seconds(text: str) -> float | None:
    """Elapsed / Timelimit / TotalCPU (``[D-][HH:]MM:SS[.fff]``) in seconds; None for UNLIMITED, empty, etc."""
    text = text.strip()
    if not text or not text[0].isdigit():
        return None
    days, _, clock = text.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 3600 + minutes * 60 + seconds


def slurm_mb(text: str) -> float | None:
    """ReqMem / MaxRSS (``64000M``, ``1.5G``, ``812344K``, ``4000Mn``, ``2000Mc``; no unit: MB, as ``--mem``)
    in MB (Slurm's M = MiB); None when empty."""
    text = text.strip().rstrip("nc")
    if not text:
        return None
    units = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
    if text[-1].upper() in units:
        return float(text[:-1]) * units[text[-1].upper()]
    return float(text)


def parse_sacct(text: str) -> dict[str, dict]:
    """``sacct -P -n -o <SACCT_FIELDS>`` lines -> per job id: its allocation line's fields, with MaxRSS the
    largest over its steps (``123.batch``, ``123.0``...)."""
    jobs: dict[str, dict] = {}
    for line in text.splitlines():
        values = line.split("|")
        if len(values) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, values))
        job, _, step = row["JobID"].partition(".")
        entry = jobs.setdefault(job, {"MaxRSS_mb": None})
        rss = slurm_mb(row["MaxRSS"])
        if rss is not None:
            entry["MaxRSS_mb"] = max(rss, entry["MaxRSS_mb"] or 0.0)
        if not step:
            entry.update({k: v for k, v in row.items() if k != "MaxRSS"})
    return jobs


def sacct_jobs(job_ids: Iterable[str], run: Callable = subprocess.run) -> dict[str, dict]:
    """Slurm's accounting of ``job_ids`` ({} where sacct is missing or has no database)."""
    ids = sorted(set(job_ids), key=lambda x: (len(x), x))
    if not ids:
        return {}
    try:
        done = run(["sacct", "-P", "-n", "-j", ",".join(ids), "-o", ",".join(SACCT_FIELDS)],
                   capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_sacct(done.stdout) if done.returncode == 0 else {}


# ---------------------------------------------------------------- one job


def benchmark_usage(path: Path) -> tuple[float, float | None, float | None] | None:
    """(seconds, CPU seconds, max RSS MB) of a benchmark file's last repeat; None if missing or unreadable."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
        row = rows[-1]
        return float(row["s"]), _float(row.get("cpu_time")), _float(row.get("max_rss"))
    except (OSError, IndexError, KeyError, ValueError):
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def job_usage(job: PlannedJob, folder: Path, logs_dir: str, accounting: dict[str, dict]) -> Usage | None:
    """What ``job`` used in its last run (see the module docstring); None if it has not run."""
    runs = read_runs(folder / outcome_file(logs_dir, job.rule, job.wildcards))
    last = runs[-1] if runs else {}
    gpu = last.get("gpu")
    record = accounting.get(str(last.get("slurm_job_id")))
    if record is not None and slurm_seconds(record.get("Elapsed", "")) is not None:
        cpus = int(record["AllocCPUS"]) if record.get("AllocCPUS", "").isdigit() else None
        limit = slurm_seconds(record.get("Timelimit", ""))
        return Usage(wall_s=slurm_seconds(record["Elapsed"]), cpu_s=slurm_seconds(record.get("TotalCPU", "")),
                     rss_mb=record.get("MaxRSS_mb"), limit_min=None if limit is None else limit / 60,
                     mem_req_mb=slurm_mb(record.get("ReqMem", "")), cpus=cpus, source="sacct", gpu=gpu)
    measured = benchmark_usage(folder / job.benchmark) if job.benchmark else None
    if measured is None:
        return None
    seconds, cpu_s, rss_mb = measured
    return Usage(wall_s=seconds, cpu_s=cpu_s, rss_mb=rss_mb, limit_min=None, mem_req_mb=_float(job.resources.get("mem_mb")),
                 cpus=int(_float(job.resources.get("cpus_per_task")) or 1), source="benchmark", gpu=gpu)


# ---------------------------------------------------------------- per rule


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rule_rows(jobs: list[PlannedJob], usages: dict[int, Usage]) -> list[dict]:
    """One row per rule with at least one measured job (COLUMNS), in the dry run's order of first appearance."""
    by_rule: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    rows = []
    for rule, rule_jobs in by_rule.items():
        used = [usages[id(job)] for job in rule_jobs if id(job) in usages]
        if not used:
            continue
        walls = [u.wall_s / 60 for u in used]
        limits = [u.limit_min for u in used if u.limit_min is not None]
        time_used = [u.wall_s / 60 / u.limit_min for u in used if u.limit_min]
        rss = [u.rss_mb for u in used if u.rss_mb is not None]
        req = [u.mem_req_mb for u in used if u.mem_req_mb is not None]
        cpu_pairs = [(u.cpu_s, u.wall_s * u.cpus) for u in used if u.cpu_s is not None and u.cpus]
        gpus = [u.gpu for u in used if u.gpu]
        nexts = [float(j.resources["runtime"]) for j in rule_jobs if _float(j.resources.get("runtime")) is not None]
        mem_used_pct = max(r / q for r, q in zip([u.rss_mb for u in used], [u.mem_req_mb for u in used]) if r and q) * 100 \
            if any(u.rss_mb and u.mem_req_mb for u in used) else None
        rows.append({
            "rule": rule,
            "jobs": str(len(used)),
            "source": "/".join(sorted({u.source for u in used})),
            "wall_min_median": _fmt(statistics.median(walls)),
            "wall_min_max": _fmt(max(walls)),
            "limit_min_max": _fmt(max(limits), 0) if limits else "-",
            "time_used_pct": _fmt(100 * max(time_used), 0) if time_used else "-",
            "mem_req_mb": _fmt(max(req), 0) if req else "-",
            "mem_used_mb_max": _fmt(max(rss), 0) if rss else "-",
            "mem_used_pct": _fmt(mem_used_pct, 0),
            "cpus": str(max(u.cpus for u in used if u.cpus)) if any(u.cpus for u in used) else "-",
            "cpu_eff_pct": _fmt(100 * sum(c for c, _ in cpu_pairs) / sum(w for _, w in cpu_pairs), 0)
            if cpu_pairs and sum(w for _, w in cpu_pairs) > 0 else "-",
            "gpu_util_pct": _fmt(statistics.mean(g["util_mean_pct"] for g in gpus), 0) if gpus else "-",
            "gpu_mem_mb_max": _fmt(max(g["mem_max_mb"] for g in gpus), 0) if gpus else "-",
            "next_limit_min_median": _fmt(statistics.median(nexts), 0) if nexts else "-",
            "next_limit_min_max": _fmt(max(nexts), 0) if nexts else "-",
        })
    return rows


def efficiency_rows(dry_run_text: str, folder: Path, results: str, sacct: Callable = sacct_jobs) -> list[dict]:
    """The per-rule table of a dry run's jobs (run in ``folder``, results under ``results``)."""
    jobs = [job for job in parse_dry_run(dry_run_text) if job.rule != "all"]
    logs_dir = f"{results}/logs"
    ids = []
    for job in jobs:
        runs = read_runs(folder / outcome_file(logs_dir, job.rule, job.wildcards))
        if runs and runs[-1].get("slurm_job_id"):
            ids.append(str(runs[-1]["slurm_job_id"]))
    accounting = sacct(ids)
    usages = {}
    for job in jobs:
        usage = job_usage(job, folder, logs_dir, accounting)
        if usage is not None:
            usages[id(job)] = usage
    return rule_rows(jobs, usages)


def format_table(rows: list[dict]) -> str:
    """Markdown table of ``rows``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    from whatnext.runtime.atomic import atomic_open

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def dry_run(profile: str | None, configfiles: tuple[str, ...], directory: str, snakefile: str,
            extra: tuple[str, ...] = ()) -> str:
    """``snakemake -n --forceall`` of the graph (with the profile's config entries repeated, as the plan does)."""
    command = ["snakemake", "-n", "--forceall", "--directory", directory, "--snakefile", snakefile, *extra]
    if profile:
        command += ["--profile", profile]
    if configfiles:
        command += ["--configfile", *configfiles]
    entries = profile_config_entries(profile) if profile else []
    if entries:
        command += ["--config", *entries]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"snakemake dry run failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout + done.stderr


def results_dir(configfiles: tuple[str, ...]) -> str:
    results = "results"
    for path in configfiles:
        results = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("results", results)
    return results


@click.command()
@click.option("--configfile", "configfiles", multiple=True, help="Workflow config(s) of the run (repeatable).")
@click.option("--results", default=None, help="Results folder of the run [default: the configs' ``results``].")
@click.option("--profile", default=None, help="Snakemake profile of the run (profiles/slurm on a cluster).")
@click.option("--directory", default=".", show_default=True, type=click.Path(file_okay=False, exists=True),
              help="Working directory of the run.")
@click.option("--snakefile", default=None, help="The workflow's Snakefile [default: DIRECTORY/Snakefile].")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the table here.")
@click.argument("snakemake_args", nargs=-1, type=click.UNPROCESSED)
def main(configfiles, results, profile, directory, snakefile, csv_path, snakemake_args) -> None:
    """Print per rule the requested and used time, memory and CPU, the GPU use and the next run's limits.
    Arguments after ``--`` go to the dry run (--config, --set-resources...)."""
    text = dry_run(profile, configfiles, directory, snakefile or str(Path(directory) / "Snakefile"), snakemake_args)
    rows = efficiency_rows(text, Path(directory), results or results_dir(configfiles))
    click.echo(format_table(rows) if rows else "no job of this graph has run yet (no benchmark or outcome file)")
    if csv_path:
        write_csv(rows, csv_path)


if __name__ == "__main__":
    sys.exit(main())
