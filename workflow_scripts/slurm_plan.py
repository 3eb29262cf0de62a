"""What a slurm profile would request, per rule, for a whole graph: no cluster needed.

    python -m workflow_scripts.slurm_plan                        # profiles/slurm, configs/paper.yaml
    python -m workflow_scripts.slurm_plan --profile profiles/slurm-a100-example --configfile configs/paper.yaml

Runs ``snakemake -n --forceall`` with the profile (Snakemake evaluates every job's resources exactly as
it would when submitting, the GPU rules' deadline-aware runtimes included) and prints, per rule, the
partition, GPUs, CPUs and memory per job and the time limits of its jobs at their first attempt, with
the GPU-hours those limits reserve (sum over jobs of GPUs x limit) and the total. Jobs the runtime
model reports as not fitting the deadline or the partition maximum are listed after the table.
Then the check before submitting (exit 1 if it finds any): every Slurm job, or group job (its jobs'
limits summed along its internal dependencies), whose limit exceeds its partition's MaxTime (from
``scontrol``, ``--partition-max``, or the profile's ``max_runtime_min`` for the GPU partition) or runs
past the deadline, named with its rules and wildcards; Slurm itself would leave the first pending
silently and kill the second unfinished.
If the config reads challenge data that is not on this machine, a stand-in folder with the challenge's
split sizes (CSV rows only; frames.zip empty) is used, since the plan only counts clips.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import click
import yaml

from workflow_scripts.time_limits import GOVERNED_RULES, workflow_files, workflow_rule_names

DAG_EDGE = re.compile(r"^\s*(\d+) -> (\d+)", re.MULTILINE)
LOCALRULES_BLOCK = re.compile(r"^localrules:\s*\n((?:[ \t]+[A-Za-z0-9_, \t]+\n?)+)", re.MULTILINE)


GROUP_HEADER = re.compile(r"Group job (?P<group>\S+) \(")
JOB_HEADER = re.compile(r"^(?P<indent>\s*)(?:local)?(?:rule|checkpoint) (?P<rule>\w+):$")
JOB_FIELD = re.compile(r"^\s+(?P<key>\w+): (?P<value>.*)$")


@dataclass
class PlannedJob:
    rule: str
    jobid: int = -1
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    group: str | None = None  # "NAME#k": the k-th group job of group NAME in the printout (one Slurm job)
    benchmark: str | None = None  # the job's benchmark file, as printed

    def describe(self) -> str:
        wildcards = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule}[{wildcards}]" if wildcards else self.rule


def _pairs(value: str) -> dict[str, str]:
    """``a=1, b=x`` -> ``{"a": "1", "b": "x"}`` (a dry run's wildcards / resources line)."""
    return dict(item.split("=", 1) for item in value.split(", ") if "=" in item)


def parse_dry_run(text: str) -> list[PlannedJob]:
    """The jobs of a ``snakemake -n`` log: rule, wildcards, resources (values as printed), benchmark file and group job.

    Jobs of a group job are printed indented under its ``Group job NAME (...)`` line; a job printed at
    the margin belongs to no group.
    """
    jobs: list[PlannedJob] = []
    fields: list[dict[str, str]] = []
    group, instances = None, defaultdict(int)
    for line in text.splitlines():
        if found := GROUP_HEADER.search(line):
            instances[found["group"]] += 1
            group = f"{found['group']}#{instances[found['group']]}"
        elif header := JOB_HEADER.match(line):
            group = group if header["indent"] else None
            jobs.append(PlannedJob(header["rule"], group=group))
            fields.append({})
        elif (found := JOB_FIELD.match(line)) and jobs:
            fields[-1].setdefault(found["key"], found["value"])
    for job, own in zip(jobs, fields):
        job.jobid = int(own.get("jobid", -1))
        job.wildcards = _pairs(own.get("wildcards", ""))
        job.resources = _pairs(own.get("resources", ""))
        job.benchmark = own.get("benchmark")
    return jobs


def local_rule_names(workflow_dir: str | Path) -> set[str]:
    """Rules named in a ``localrules:`` block of the Snakefile or rules/*.smk (never submitted)."""
    names: set[str] = set()
    for path in workflow_files(workflow_dir):
        for block in LOCALRULES_BLOCK.findall(path.read_text(encoding="utf-8")):
            names.update(n for n in re.split(r"[\s,]+", block) if n)
    return names


@dataclass
class RulePlan:
    """One rule's requests; ``limits_min`` holds each job's time limit (minutes)."""

    rule: str
    local: bool
    partition: str = "-"
    gpus: int = 0
    cpus: int = 1
    mem_mb: int = 0
    limits_min: list[int] = field(default_factory=list)

    @property
    def gpu_hours(self) -> float:
        return 0.0 if self.local else self.gpus * sum(self.limits_min) / 60


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def plan_by_rule(jobs: list[PlannedJob], local_rules: set[str]) -> list[RulePlan]:
    """Per rule (in order of first appearance); errors if jobs of one rule ask for different partitions/GPUs."""
    plans: dict[str, RulePlan] = {}
    for job in jobs:
        res = job.resources
        local = job.rule in local_rules
        shape = (res.get("slurm_partition", "-"), _int(res.get("gpu")), _int(res.get("cpus_per_task"), 1), _int(res.get("mem_mb")))
        plan = plans.get(job.rule)
        if plan is None:
            plan = plans[job.rule] = RulePlan(job.rule, local, *shape)
        elif not local and (plan.partition, plan.gpus, plan.cpus, plan.mem_mb) != shape:
            raise click.ClickException(f"rule {job.rule}: jobs ask for different resources ({shape} vs the first job's)")
        if not local:
            plan.limits_min.append(_int(res.get("runtime")))
    return list(plans.values())


def critical_path(jobs: list[PlannedJob], dot: str, local_rules: set[str]) -> tuple[float, list[PlannedJob]]:
    """Longest chain of first-attempt limits (minutes) through the DAG (``snakemake --dag``; node = jobid), and its jobs.

    With unlimited GPUs and no queueing, no schedule finishes the graph sooner than this (at these limits).
    """
    by_id = {job.jobid: job for job in jobs}
    parents: dict[int, list[int]] = defaultdict(list)
    for parent, child in DAG_EDGE.findall(dot):
        parents[int(child)].append(int(parent))
    finish: dict[int, float] = {}

    def done_at(jobid: int) -> float:
        if jobid not in finish:
            job = by_id[jobid]
            own = 0 if job.rule in local_rules else _int(job.resources.get("runtime"))
            finish[jobid] = own + max((done_at(p) for p in parents[jobid] if p in by_id), default=0)
        return finish[jobid]

    end = max(by_id, key=done_at)
    chain = [by_id[end]]
    while parents[chain[-1].jobid]:
        chain.append(by_id[max((p for p in parents[chain[-1].jobid] if p in by_id), key=done_at)])
    return finish[end], chain[::-1]


def group_limits(jobs: list[PlannedJob], dot: str, local_rules: set[str]) -> dict[str, tuple[int, list[PlannedJob]]]:
    """Per group job: its limit (minutes) and its jobs. As Snakemake sizes a group job's ``runtime``: the
    jobs that depend on each other inside the group run one after another (sum over the layers of the
    group's DAG), the jobs of one layer side by side (their maximum)."""
    members: dict[str, list[PlannedJob]] = defaultdict(list)
    for job in jobs:
        if job.group and job.rule not in local_rules:
            members[job.group].append(job)
    parents: dict[int, set[int]] = defaultdict(set)
    for parent, child in DAG_EDGE.findall(dot):
        parents[int(child)].add(int(parent))
    limits = {}
    for group, inside in members.items():
        ids = {job.jobid for job in inside}
        depth: dict[int, int] = {}

        def layer(jobid: int) -> int:
            if jobid not in depth:
                depth[jobid] = 1 + max((layer(p) for p in parents[jobid] & ids), default=-1)
            return depth[jobid]

        by_layer: dict[int, int] = defaultdict(int)
        for job in inside:
            by_layer[layer(job.jobid)] = max(by_layer[layer(job.jobid)], _int(job.resources.get("runtime")))
        limits[group] = (sum(by_layer.values()), inside)
    return limits


def limit_problems(jobs: list[PlannedJob], dot: str, local_rules: set[str], partition_max_min: dict[str, float],
                   minutes_left: float | None) -> list[str]:
    """Slurm jobs (a job, or a group job) that cannot run as planned, each named with its rules and wildcards:
    a limit above its partition's MaxTime (Slurm would leave it pending for ever), or a limit that runs
    past the deadline (``minutes_left`` from now; the job would be killed unfinished if it needs it all)."""
    units: list[tuple[str, int, str]] = []  # (what, limit, partition)
    for group, (limit, inside) in group_limits(jobs, dot, local_rules).items():
        names = ", ".join(job.describe() for job in inside)
        units.append((f"group job {group.split('#')[0]} ({names})", limit, inside[0].resources.get("slurm_partition", "-")))
    units += [(job.describe(), _int(job.resources.get("runtime")), job.resources.get("slurm_partition", "-"))
              for job in jobs if not job.group and job.rule not in local_rules]
    problems = []
    for what, limit, partition in units:
        most = partition_max_min.get(partition)
        if most is not None and limit > most:
            problems.append(f"{what}: limit {limit} min exceeds the MaxTime of partition {partition} ({most:g} min); "
                            "Slurm would keep it pending")
        if minutes_left is not None and limit > minutes_left:
            problems.append(f"{what}: limit {limit} min runs past the deadline ({max(0.0, minutes_left):.0f} min left); "
                            "it cannot be sure to end before it")
    return problems


def slurm_minutes(text: str) -> float | None:
    """A Slurm time (``MM:SS``, ``H:MM:SS``, ``D-HH:MM:SS``, ``UNLIMITED``) in minutes; None if unlimited."""
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    hours, minutes, seconds = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def partition_max_times() -> dict[str, float]:
    """MaxTime (minutes) of each limited partition of the cluster this machine talks to (``scontrol``); {} without one."""
    try:
        text = subprocess.run(["scontrol", "show", "partition", "--oneliner"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {name: slurm_minutes(most) for name, most in re.findall(r"PartitionName=(\S+).*?MaxTime=(\S+)", text)}
    return {name: most for name, most in found.items() if most is not None}


def format_chain(chain: list[PlannedJob], local_rules: set[str]) -> str:
    """``ssl_pretrain x10 -> finetune_cascade -> ...``: consecutive jobs of one rule counted."""
    parts: list[list] = []
    for job in chain:
        if job.rule in local_rules:
            continue
        if parts and parts[-1][0] == job.rule:
            parts[-1][1] += 1
        else:
            parts.append([job.rule, 1])
    return " -> ".join(rule if n == 1 else f"{rule} x{n}" for rule, n in parts)


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def format_plan(plans: list[RulePlan]) -> str:
    """The table printed by the CLI, with the total GPU-hours on the last line."""
    head = f"{'rule':<20} {'jobs':>5}  {'partition':<10} {'GPUs':>4} {'CPUs':>4} {'mem GB':>7}  {'time limit h:mm (min-max)':<26} {'GPU-h':>9}"
    lines = [head, "-" * len(head)]
    for p in plans:
        jobs = len(p.limits_min) if not p.local else "-"
        if p.local:
            lines.append(f"{p.rule:<20} {jobs:>5}  {'local':<10} {'-':>4} {'-':>4} {'-':>7}  {'-':<26} {'-':>9}")
            continue
        span = _hours(min(p.limits_min)) if min(p.limits_min) == max(p.limits_min) else f"{_hours(min(p.limits_min))}-{_hours(max(p.limits_min))}"
        lines.append(f"{p.rule:<20} {jobs:>5}  {p.partition:<10} {p.gpus:>4} {p.cpus:>4} {p.mem_mb / 1000:>7.0f}  {span:<26} {p.gpu_hours:>9.1f}")
    total = sum(p.gpu_hours for p in plans)
    lines.append("-" * len(head))
    lines.append(f"total: {sum(len(p.limits_min) for p in plans if not p.local)} slurm jobs, {total:.1f} GPU-hours at first-attempt limits")
    return "\n".join(lines)


EPIC_SPLITS = {"train": 67217, "val": 9668, "test": 9449}  # EPIC-KITCHENS-100 segments (the brief's table)


def stand_in_epic_dir(folder: Path) -> Path:
    """EPIC-KITCHENS-100's annotation files with its split sizes (rows of one video), 97 verb and 300 noun
    classes and an empty videos/, for planning the epic task."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "videos").mkdir(exist_ok=True)
    header = "narration_id,participant_id,video_id,start_frame,stop_frame"
    for split, n in EPIC_SPLITS.items():
        extra = "" if split == "test" else ",verb_class,noun_class"
        rows = (f"P01_101_{i},P01,P01_101,1,2" + ("" if split == "test" else ",0,0") for i in range(n))
        (folder / f"{split}.csv").write_text("\n".join([header + extra, *rows]) + "\n", encoding="utf-8")
    (folder / "video_info.csv").write_text("video_id,duration,fps\nP01_101,1.0,50\n", encoding="utf-8")
    for name, n in (("verb_classes.csv", 97), ("noun_classes.csv", 300)):
        (folder / name).write_text("\n".join(["id,key", *(f"{i},c{i}" for i in range(n))]) + "\n", encoding="utf-8")
    return folder


def stand_in_challenge_dir(folder: Path) -> Path:
    """CSV files with the challenge's split sizes (ids only) and an empty frames.zip, for planning."""
    import zipfile

    from whatnext.data.class_table import class_counts, load_class_table

    folder.mkdir(parents=True, exist_ok=True)
    counts = {split: sum(c) for split, c in class_counts(load_class_table(), 1.0).items()}
    for split, n in counts.items():
        header = "video_id" if split == "test" else "video_id,label"
        rows = (f"{i}" if split == "test" else f"{i},0" for i in range(n))
        (folder / f"{split}.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    zipfile.ZipFile(folder / "frames.zip", "w").close()
    return folder


def profile_config_entries(profile: str) -> list[str]:
    """The profile's ``config:`` mapping as ``--config`` entries, formatted as Snakemake formats them."""
    entries = _profile_config(profile)
    return [f"{key}={'' if value is None else value}" for key, value in entries.items()]


def _profile_config(profile: str) -> dict:
    path = Path(profile) / "config.yaml" if Path(profile).is_dir() else Path(profile)
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}


def profile_partition_max(profile: str, jobs: list[PlannedJob]) -> dict[str, float]:
    """The profile's ``resources.max_runtime_min`` (the GPU partition's MaxTime) for the partitions of the GPU rules."""
    most = (_profile_config(profile).get("resources") or {}).get("max_runtime_min")
    if most in (None, ""):
        return {}
    return {job.resources["slurm_partition"]: float(most) for job in jobs
            if job.rule in GOVERNED_RULES and "slurm_partition" in job.resources}


def profile_deadline(profile: str) -> str | None:
    return _profile_config(profile).get("deadline") or None


def minutes_left(deadline: str | None) -> float | None:
    if not deadline:
        return None
    return (datetime.fromisoformat(deadline).astimezone() - datetime.now().astimezone()).total_seconds() / 60


def _reads_missing_challenge_data(configfile: str) -> str | None:
    """The task whose challenge data the config reads and this machine lacks (None: nothing missing)."""
    config = yaml.safe_load(Path(configfile).read_text(encoding="utf-8"))
    data = config.get("data", {})
    missing = data.get("source") == "challenge" and not Path(str(data.get("challenge", {}).get("dir"))).is_dir()
    return (config.get("task") or {}).get("name", "whatnext") if missing else None


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--profile", default="profiles/slurm", show_default=True, help="Snakemake profile to plan for.")
@click.option("--configfile", default="configs/paper.yaml", show_default=True, help="Workflow config of the graph.")
@click.option("--workflow-dir", default=".", show_default=True, type=click.Path(file_okay=False, exists=True), help="Folder holding the Snakefile.")
@click.option("--deadline", default=None, help="Plan for this ISO 8601 deadline instead of the profile's.")
@click.option("--partition-max", "partition_max", multiple=True, metavar="NAME=MIN",
              help="MaxTime of a partition in minutes (repeatable); default: scontrol's, else the profile's "
                   "resources.max_runtime_min for the GPU rules' partition.")
@click.argument("snakemake_args", nargs=-1, type=click.UNPROCESSED)
def main(profile: str, configfile: str, workflow_dir: str, deadline: str | None, partition_max: tuple[str, ...],
         snakemake_args: tuple[str, ...]) -> None:
    """Print per rule the partition, GPUs, CPUs, memory and time limits a profile would request, and the GPU-hours.

    Then every Slurm job or group job whose limit exceeds its partition's MaxTime or runs past the
    deadline, named with its rules and wildcards (exit 1 if there is one). Extra arguments go to
    snakemake (not --config: the plan builds it from the profile's).
    """
    try:
        given = {name: float(most) for name, _, most in (item.partition("=") for item in partition_max)}
    except ValueError:
        raise click.BadParameter(f"{partition_max}: expected NAME=MINUTES", param_hint="--partition-max") from None
    if "--config" in snakemake_args or "-C" in snakemake_args:
        raise click.ClickException("--config would replace the profile's config entries; use --deadline or edit the profile")
    if not Path(configfile).is_file():
        raise click.ClickException(f"--configfile {configfile}: no such file")
    command = ["snakemake", "-n", "--forceall", "--profile", profile, "--configfile", configfile, "--directory", workflow_dir,
               "--snakefile", str(Path(workflow_dir) / "Snakefile"), *snakemake_args]
    # A command-line --config replaces the profile's: the plan repeats the profile's entries, then its own.
    entries = profile_config_entries(profile) + ([f"deadline={deadline}"] if deadline else [])
    with tempfile.TemporaryDirectory(prefix="slurm-plan-") as scratch:
        task = _reads_missing_challenge_data(configfile)
        if task:
            stand_in = stand_in_epic_dir if task == "epic" else stand_in_challenge_dir
            folder = stand_in(Path(scratch) / "challenge")
            click.echo(f"challenge data not found: planning with a stand-in of its split sizes ({folder})", err=True)
            entries.append(f"data={{source: challenge, challenge: {{dir: {folder}}}}}")
        if entries:
            command += ["--config", *entries]
            # The jobs with their resources, and the DAG (same job ids), side by side.
        runs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in (command, command + ["--dag"])]
        (log_out, log_err), (dot, dag_err) = (r.communicate() for r in runs)
    for run, err in zip(runs, (log_out + log_err, dag_err)):
        if run.returncode != 0:
            raise click.ClickException(f"snakemake dry run failed ({shlex.join(run.args)}):\n{err[-3000:]}")
    log = log_out + log_err
    jobs = parse_dry_run(log)
    if not jobs:
        raise click.ClickException("the dry run listed no job")
    local = local_rule_names(workflow_dir) | {"all"}
    click.echo(format_plan(plan_by_rule(jobs, local)))
    length, chain = critical_path(jobs, dot, local)
    click.echo(f"critical path at these limits (unlimited GPUs, no queueing): {length / 60:.1f} h: {format_chain(chain, local)}")
    if deadline:
        left = minutes_left(deadline)
        verdict = "fits" if length <= left else f"does NOT fit: {length / 60 - left / 60:.1f} h short"
        click.echo(f"deadline {deadline}: {left / 60:.1f} h left; the critical path {verdict}")
    warnings = [line for line in log.splitlines() if line.startswith("time limits: ")]
    if warnings:
        click.echo(f"\n{len(warnings)} job(s) do not fit the limits:")
        click.echo("\n".join(warnings))
    problems = limit_problems(jobs, dot, local, {**profile_partition_max(profile, jobs), **partition_max_times(), **given},
                              minutes_left(deadline or profile_deadline(profile)))
    if problems:
        click.echo(f"\n{len(problems)} Slurm job(s) cannot run as planned:\n" + "\n".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
