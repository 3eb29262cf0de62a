"""Deadline-aware time limits (SLURM ``runtime``, whole minutes) of the training and inference rules.

A job's limit at retry ``attempt`` (1-based) is

    min(ceil(estimate x headroom x attempt_growth ** time_retries),  partition maximum,
        minutes left before the deadline - margin)

where ``time_retries`` counts the earlier attempts that ran out of time (TIMEOUT or exit 75; from their
recorded outcomes, workflow_scripts/retry_policy.py; ``attempt - 1`` when the caller does not know them)

where the estimate (minutes on one GPU) comes from the work: ``units`` x cost per unit + start-up,
``units`` = max_epochs x clips for training (the most a run that stops by progress can do; SSL reads
every split, a finetune its fit's clips plus the pseudo-labelled test clips of its round) and clips x
test-time views for ``cache_probs`` (val + test of a train-only member; test of its twin, rule
``cache_probs_twin``, which shares its work model). The cost per unit is the median measured by the rule's own ``benchmark:`` files once some of its jobs have run,
else ``resources.ms_per_unit[rule]`` from the config. ``resources.runtime_min_by_rule[rule]`` replaces
the estimate outright.

Config keys read (all optional; the slurm profile sets the cluster ones through its ``config:``):
``deadline`` (ISO 8601, top level, also given to the training CLIs) and, under ``resources``:
``max_runtime_min`` (partition maximum), ``deadline_margin_min`` (30), ``headroom`` (1.5),
``attempt_growth`` (2), ``overhead_min`` (2), ``ms_per_unit`` ({rule: ms}), ``runtime_min_by_rule``,
``runtime_min`` (estimate of a rule the work model does not know; 60), ``use_benchmarks`` (true).
Values passed through ``snakemake --config`` arrive as strings; they are read as numbers here.

A job whose estimate does not fit before the deadline, or needs more than one partition maximum
(it then resumes over several attempts), is reported on stderr when the graph is built. A deadline
already past (or inside the margin) and a partition maximum below the start-up time of any job are
errors (:class:`TimeLimitError`) raised before anything is submitted.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from workflow_scripts.member_table import ConfigError, Member, member_id_of, member_table
from workflow_scripts.resources import gpu_job_resources  # noqa: F401  (the rules' interface, re-exported)
from workflow_scripts.training_settings import merge_settings

DEFAULTS = {
    "deadline_margin_min": 30.0,
    "headroom": 1.5,
    "attempt_growth": 2.0,
    "overhead_min": 2.0,
    "runtime_min": 60.0,
    "use_benchmarks": True,
}
FINETUNE_FAMILIES = {"finetune_cascade": "cascade", "finetune_mae2d": "mae2d",
                     "finetune_videomae": "videomae", "finetune_jepa": "jepa", "finetune_scratch": "scratch"}
# Where the rules write their benchmark files (relative to {results}/benchmarks), as patterns whose
# groups are the job's wildcards; tests/slurm checks them against rules/*.smk.
BENCHMARK_PATTERNS = {
    "ssl_pretrain": r"ssl/(?P<family>[^/]+)/gen(?P<gen>[0-9]+)\.tsv",
    "finetune_cascade": r"finetune/cascade-g(?P<gen>[0-9]+)-(?P<head>[^/]+)-r(?P<round>[0-9]+)/(?P<fit>[a-z]+)\.tsv",
    "finetune_mae2d": r"finetune/mae2d-(?P<name>[^/]+)/(?P<fit>[a-z]+)\.tsv",
    "finetune_videomae": r"finetune/videomae-(?P<name>[^/]+)/(?P<fit>[a-z]+)\.tsv",
    "finetune_jepa": r"finetune/jepa-(?P<name>[^/]+)/(?P<fit>[a-z]+)\.tsv",
    "finetune_scratch": r"finetune/scratch-(?P<name>[^/]+)/(?P<fit>[a-z]+)\.tsv",
    "cache_probs": r"cache_probs/(?P<member>[^/]+)/(?P<fit>[a-z]+)\.tsv",
}
# Rules that share another rule's work model (ms_per_unit, runtime_min_by_rule, benchmark evidence).
WORK_MODEL_OF = {"cache_probs_twin": "cache_probs"}
GOVERNED_RULES = (*BENCHMARK_PATTERNS, *WORK_MODEL_OF)
CACHED_SPLITS = {"train": ("val", "test"), "trainval": ("test",)}  # the splits a cache_probs job of each fit writes
TTA_VIEWS = {"none": 1, "five_crop": 5}

_reported: set[str] = set()
_memos: dict[tuple[str, str], object] = {}


def _memo(kind: str, config: Mapping, compute: Callable):
    """``compute()`` once per config content (the rules call the runtime model for every job)."""
    key = (kind, repr(config))
    if key not in _memos:
        _memos[key] = compute()
    return _memos[key]


class TimeLimitError(ValueError):
    """Cluster limits that make the graph impossible (deadline past, partition shorter than any job)."""


# ---------------------------------------------------------------- limits of the cluster


def _number(value, key: str) -> float | None:
    """A config number that may arrive as a string through ``--config``; None / "None" / "" -> None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TimeLimitError(f"config resources.{key}: {value!r} is not a number") from None


def parse_deadline(text) -> datetime | None:
    """The config's ``deadline`` as an aware datetime (no zone: local time, as squeue prints)."""
    if text is None or str(text).strip().lower() in ("", "none", "null"):
        return None
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise TimeLimitError(f"config deadline: {text!r} is not an ISO 8601 date-time (e.g. 2026-12-24T18:00:00+00:00)") from None
    return moment if moment.tzinfo else moment.astimezone()


@dataclass(frozen=True)
class ClusterLimits:
    """What bounds every job: partition maximum and deadline (minutes / aware datetime), and the margins."""

    max_runtime_min: float | None
    deadline: datetime | None
    margin_min: float
    headroom: float
    attempt_growth: float

    @classmethod
    def from_config(cls, config: Mapping, now: datetime) -> "ClusterLimits":
        section = {**DEFAULTS, **(config.get("resources") or {})}
        limits = cls(
            max_runtime_min=_number(section.get("max_runtime_min"), "max_runtime_min"),
            deadline=parse_deadline(config.get("deadline")),
            margin_min=_number(section["deadline_margin_min"], "deadline_margin_min") or 0.0,
            headroom=_number(section["headroom"], "headroom") or 1.0,
            attempt_growth=_number(section["attempt_growth"], "attempt_growth") or 1.0,
        )
        if limits.max_runtime_min is not None and limits.max_runtime_min < 1:
            raise TimeLimitError(f"config resources.max_runtime_min: {section['max_runtime_min']!r} is below one minute")
        left = limits.minutes_left(now)
        if left is not None and left < 1:
            raise TimeLimitError(
                f"config deadline {limits.deadline.isoformat()} is past, or less than the margin of "
                f"{limits.margin_min:g} min away (now {now.astimezone().isoformat(timespec='seconds')}): no job can run"
            )
        return limits

    def minutes_left(self, now: datetime) -> float | None:
        """Minutes from ``now`` until the deadline minus the margin (None without a deadline)."""
        if self.deadline is None:
            return None
        return (self.deadline - now).total_seconds() / 60 - self.margin_min


@dataclass(frozen=True)
class TimeLimit:
    """A job's limit (whole minutes), the estimate it came from and which bound set it."""

    minutes: int
    estimate_min: float
    bound: str  # "estimate", "partition" or "deadline"
    attempts_needed: int  # attempts of at most the partition maximum the estimate needs
    fits_deadline: bool


def time_limit(estimate_min: float, attempt: int, limits: ClusterLimits, now: datetime,
               time_retries: int | None = None) -> TimeLimit:
    """The limit of a job estimated at ``estimate_min`` minutes, at retry ``attempt`` (1-based), after
    ``time_retries`` earlier attempts that ran out of time (None: every earlier attempt did)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    growth = attempt - 1 if time_retries is None else time_retries
    candidates = {"estimate": math.ceil(estimate_min * limits.headroom * limits.attempt_growth ** growth)}
    if limits.max_runtime_min is not None:
        candidates["partition"] = math.floor(limits.max_runtime_min)
    left = limits.minutes_left(now)
    if left is not None:
        candidates["deadline"] = math.floor(left)
    bound = min(candidates, key=lambda name: (candidates[name], name != "estimate"))
    attempts = 1 if limits.max_runtime_min is None else max(1, math.ceil(estimate_min / limits.max_runtime_min))
    return TimeLimit(
        minutes=max(1, candidates[bound]),
        estimate_min=estimate_min,
        bound=bound,
        attempts_needed=attempts,
        fits_deadline=left is None or estimate_min <= left,
    )


# ---------------------------------------------------------------- the work of a job


def clip_counts(config: Mapping) -> dict[str, int]:
    """Clips per split (train, val, test) of the config's data: generated counts or the CSVs' rows (task epic:
    segments)."""
    data = config["data"]
    epic = (config.get("task") or {}).get("name") == "epic"
    if data["source"] == "synth" and epic:
        synth = {"participants": 2, "videos": 3, "segments": 30} | (data.get("epic_synth") or {})
        per_video = synth["participants"] * synth["segments"]
        return {"train": per_video * (synth["videos"] - 2), "val": per_video, "test": per_video}
    if data["source"] == "synth":
        from whatnext.data.class_table import class_counts, load_class_table

        return {split: sum(counts) for split, counts in class_counts(load_class_table(), float(data["synth"]["scale"])).items()}
    folder = Path(data["challenge"]["dir"])
    counts = {}
    for split in ("train", "val", "test"):
        path = folder / f"{split}.csv"
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                counts[split] = sum(1 for _ in csv.reader(handle)) - 1
        except OSError as err:
            raise ConfigError(f"data.challenge.dir: cannot count the clips of {path} ({err})") from None
    return counts


def _get(wildcards, name: str) -> str:
    return wildcards[name] if isinstance(wildcards, Mapping) else getattr(wildcards, name)


def _members(config: Mapping, members: Mapping[str, Member] | None) -> Mapping[str, Member]:
    """The member table the graph built (``members``), else the same table built from ``config``."""
    return members if members is not None else _memo("members", config, lambda: member_table(dict(config)))


def frames_factor(config: Mapping, member=None) -> float:
    """A clip's cost relative to the whatnext task's 4 frames: T / 4 for the epic task (the member's
    ``frames`` option, else ``task.frames``), 1 for whatnext."""
    task = config.get("task") or {}
    if task.get("name") != "epic":
        return 1.0
    options = (member.train.get("options") or {}) if member is not None else {}
    return float(options.get("frames", task.get("frames", 16))) / 4


def job_units(rule_name: str, wildcards, config: Mapping, counts: Mapping[str, int],
              members: Mapping[str, Member] | None = None) -> float:
    """Units of work of one job: clip-epochs of a training job, clip-views of a ``cache_probs`` job, each clip
    counted as T / 4 of them for the epic task (:func:`frames_factor`). ``members``: the graph's member table
    (``workflow_scripts.member_table.member_table(config)``, built here when not given)."""
    if rule_name == "ssl_pretrain":
        family = _get(wildcards, "family")
        epochs = merge_settings(config.get("train"), config["ssl"][family].get("train"))["max_epochs"]
        return epochs * sum(counts.values())
    if rule_name in FINETUNE_FAMILIES:
        member_id = member_id_of(FINETUNE_FAMILIES[rule_name], wildcards)
        members = _members(config, members)
        if member_id not in members:
            raise ConfigError(f"member {member_id!r} is not defined by the config")
        member = members[member_id]
        clips = counts["train"] + (counts["val"] if _get(wildcards, "fit") == "trainval" else 0)
        clips += counts["test"] if member.round > 0 else 0
        return member.train["max_epochs"] * clips * frames_factor(config, member)
    if rule_name == "cache_probs":
        inference = config.get("inference", {})
        task = config.get("task") or {}
        if task.get("name") == "epic":
            members = _members(config, members)
            views = TTA_VIEWS.get(inference.get("tta", "none"), 1) * task.get("test_clips", 1)
            views *= frames_factor(config, members.get(_get(wildcards, "member")))
        else:
            views = TTA_VIEWS.get(inference.get("tta", "none"), 1) * (2 if inference.get("flip") else 1)
        return sum(counts[split] for split in CACHED_SPLITS[_get(wildcards, "fit")]) * views
    raise KeyError(rule_name)


def benchmark_seconds_per_unit(rule_name: str, config: Mapping, counts: Mapping[str, int],
                               members: Mapping[str, Member] | None = None) -> float | None:
    """Median measured seconds per unit over the rule's benchmark files (None before any has run)."""
    root = Path(config["results"]) / "benchmarks"
    pattern = re.compile(BENCHMARK_PATTERNS[rule_name])
    rates = []
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else ():
        match = pattern.fullmatch(path.relative_to(root).as_posix())
        if not match:
            continue
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                seconds = [float(row["s"]) for row in csv.DictReader(handle, delimiter="\t")]
            units = job_units(rule_name, match.groupdict(), config, counts, members)
        except (OSError, KeyError, ValueError):
            continue  # a benchmark of a job the config no longer defines, or a damaged file: not evidence
        if seconds and units > 0:
            rates.append(statistics.median(seconds) / units)
    return statistics.median(rates) if rates else None


@dataclass(frozen=True)
class Estimate:
    minutes: float
    source: str  # "runtime_min_by_rule", "benchmark", "ms_per_unit" or "runtime_min"


def estimate_minutes(rule_name: str, wildcards, config: Mapping, counts: Mapping[str, int] | None = None,
                     members: Mapping[str, Member] | None = None) -> Estimate:
    """Estimated minutes of one job on one GPU, and where the estimate came from."""
    rule_name = WORK_MODEL_OF.get(rule_name, rule_name)
    section = {**DEFAULTS, **(config.get("resources") or {})}
    fixed = (section.get("runtime_min_by_rule") or {}).get(rule_name)
    if fixed is not None:
        return Estimate(_number(fixed, f"runtime_min_by_rule.{rule_name}"), "runtime_min_by_rule")
    cost_ms = (section.get("ms_per_unit") or {}).get(rule_name)
    use_benchmarks = str(section["use_benchmarks"]).lower() not in ("false", "0", "no")
    if rule_name not in GOVERNED_RULES or (cost_ms is None and not use_benchmarks):
        return Estimate(_number(section["runtime_min"], "runtime_min"), "runtime_min")
    counts = counts if counts is not None else clip_counts(config)
    units = job_units(rule_name, wildcards, config, counts, members)
    measured = benchmark_seconds_per_unit(rule_name, config, counts, members) if use_benchmarks else None
    if measured is not None:
        return Estimate(units * measured / 60, "benchmark")
    if cost_ms is None:
        return Estimate(_number(section["runtime_min"], "runtime_min"), "runtime_min")
    overhead = _number(section["overhead_min"], "overhead_min") or 0.0
    return Estimate(overhead + units * _number(cost_ms, f"ms_per_unit.{rule_name}") / 60000, "ms_per_unit")


# ---------------------------------------------------------------- what the rules call


def describe_job(rule_name: str, wildcards) -> str:
    items = wildcards.items() if isinstance(wildcards, Mapping) else dict(wildcards).items()
    return f"{rule_name}[{', '.join(f'{k}={v}' for k, v in items)}]"


def report_job(job: str, limit: TimeLimit, limits: ClusterLimits, now: datetime, stream=None) -> str | None:
    """The graph-time warning for a job that does not fit (None if it fits); printed once per job."""
    needed = limit.estimate_min
    problems = []
    if not limit.fits_deadline:
        problems.append(
            f"needs ~{needed:.0f} min but only {max(0, limits.minutes_left(now)):.0f} min remain before the "
            f"deadline {limits.deadline.isoformat()} (margin {limits.margin_min:g} min); it will checkpoint, "
            "stop (exit 75) and need a later deadline to finish"
        )
    if limit.attempts_needed > 1:
        problems.append(
            f"needs ~{needed:.0f} min, more than the partition maximum of {limits.max_runtime_min:g} min: "
            f"it resumes over {limit.attempts_needed} attempts (set retries >= {limit.attempts_needed - 1})"
        )
    if not problems:
        return None
    message = f"time limits: {job} " + "; ".join(problems)
    if message not in _reported:
        _reported.add(message)
        print(message, file=stream or sys.stderr)
    return message


def runtime_minutes(rule_name: str, wildcards, attempt: int, config: Mapping,
                    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc), time_retries: int | None = None,
                    members: Mapping[str, Member] | None = None) -> int:
    """Time limit in whole minutes of one job of ``rule_name`` at retry ``attempt`` (the rules' interface),
    after ``time_retries`` earlier attempts that ran out of time (None: ``attempt - 1``). ``members``: the
    member table the graph already built (``MEMBERS`` of rules/common.smk); built from ``config`` if None."""
    moment = now()
    limits = ClusterLimits.from_config(config, moment)
    estimate = estimate_minutes(rule_name, wildcards, config, _memo("counts", config, lambda: clip_counts(config)), members)
    overhead = _number({**DEFAULTS, **(config.get("resources") or {})}["overhead_min"], "overhead_min") or 0.0
    if limits.max_runtime_min is not None and limits.max_runtime_min < min(overhead, estimate.minutes):
        raise TimeLimitError(
            f"config resources.max_runtime_min: the partition maximum of {limits.max_runtime_min:g} min is shorter "
            f"than the start-up of every job ({overhead:g} min; {describe_job(rule_name, wildcards)} needs "
            f"~{estimate.minutes:.0f} min)"
        )
    limit = time_limit(estimate.minutes, attempt, limits, moment, time_retries)
    if attempt == 1:
        report_job(describe_job(rule_name, wildcards), limit, limits, moment)
    return limit.minutes


RULE_LINE = re.compile(r"^\s*(?:rule\s+([A-Za-z_][A-Za-z0-9_]*)\s*:|use\s+rule\s+\w+\s+as\s+([A-Za-z_][A-Za-z0-9_]*)\s+with\s*:)",
                       re.MULTILINE)


def workflow_files(workflow_dir: str | Path) -> list[Path]:
    """The Snakefile and rules/*.smk of a workflow folder, those that exist."""
    workflow_dir = Path(workflow_dir)
    return [p for p in [workflow_dir / "Snakefile", *sorted((workflow_dir / "rules").glob("*.smk"))] if p.is_file()]


def workflow_rule_names(workflow_dir: str | Path) -> set[str]:
    """Every rule the workflow can define (Snakefile and rules/*.smk), whichever the config includes."""
    return {plain or derived for path in workflow_files(workflow_dir)
            for plain, derived in RULE_LINE.findall(path.read_text(encoding="utf-8"))}


def check_profile_rules(profile_rules, workflow_dir: str | Path) -> None:
    """Error if the profile's per-rule settings (``set-resources``) name a rule the workflow lacks.

    Snakemake ignores such entries silently, so a typo would send a GPU rule to the default partition.
    Call from the workflow: ``check_profile_rules(workflow.resource_settings.overwrite_resources, workflow.basedir)``.
    """
    known = workflow_rule_names(workflow_dir)
    unknown = sorted(set(profile_rules) - known)
    if unknown:
        raise TimeLimitError(
            f"profile set-resources name unknown rule(s) {', '.join(unknown)}; the workflow's rules are "
            f"{', '.join(sorted(known))}"
        )
