"""Read a ``snakemake --dry-run`` printout: jobs per rule, and the files each job reads.

Used by the dry-run table test and bench/dry_run.py. Parses Snakemake 9's printout: job blocks start
with ``rule NAME:`` or ``localrule NAME:`` followed by indented ``key: value`` lines; the
``Job stats:`` table lists ``rule count`` rows and a ``total``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (?P<rule>\w+):$")
JOB_FIELD = re.compile(r"^\s+(?P<key>\w+): (?P<value>.*)$")
BASELINE = "baseline"  # the pixel baseline's folder (rules/common.smk BASELINE_DIR)
CACHE_PATH = re.compile(r"(?P<member>[A-Za-z0-9_.-]+)/(?P<fit>train|trainval)-(?P<split>val|test)\.npz$")


@dataclass
class DryRunJob:
    rule: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        return [p for p in self.fields.get("input", "").split(", ") if p]


def job_counts(printout: str) -> dict[str, int]:
    """``{rule: jobs}`` from the Job stats table (without the total row)."""
    lines = printout.splitlines()
    try:
        start = lines.index("Job stats:") + 3  # title, header, dashes
    except ValueError:
        raise ValueError("no 'Job stats:' table in the dry-run printout (nothing to do?)") from None
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def dry_run_jobs(printout: str) -> list[DryRunJob]:
    """Every job block of the printout, in order."""
    jobs: list[DryRunJob] = []
    for line in printout.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append(DryRunJob(header["rule"]))
            continue
        match = JOB_FIELD.match(line)
        if match and jobs:
            jobs[-1].fields.setdefault(match["key"], match["value"])
    return jobs


def members_read_by(printout: str, rule: str) -> set[str]:
    """Member ids whose probability caches the (single) job of ``rule`` reads (not the pixel baseline's
    cache, ``{results}/baseline/train-val.npz``: it is scored beside the members, never one of them)."""
    jobs = [j for j in dry_run_jobs(printout) if j.rule == rule]
    if len(jobs) != 1:
        raise ValueError(f"expected one {rule} job in the dry run, found {len(jobs)}")
    return {m["member"] for m in map(CACHE_PATH.search, jobs[0].inputs) if m and m["member"] != BASELINE}
