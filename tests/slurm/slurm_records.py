"""Slurm's own records of a Snakemake run, matched to the jobs Snakemake submitted.

Sources: ``scontrol show job --oneliner`` (slurmctld keeps finished jobs for MinJobAge; gives
Partition, TimeLimit, TresPerJob=gres:gpu:N, JobState, ExitCode, Comment=rule_<rule>[_wildcards_<values>])
and the Snakemake log (each job's block: rule, wildcards, resources; then "Job <id> has been submitted
with SLURM jobid <n>"). Used by the end-to-end check (tests/slurm/e2e_slurm.py) and its unit tests.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

JOB_BLOCK = re.compile(r"^(?P<local>local)?rule (?P<rule>[A-Za-z_][A-Za-z0-9_]*):$")
SUBMITTED = re.compile(r"^Job (?P<job>\d+) has been submitted with SLURM jobid (?P<slurm>\d+)")
JOBID_LINE = re.compile(r"^\s+jobid: (?P<job>\d+)$")


@dataclass
class SlurmRecord:
    """One Slurm job as slurmctld reports it."""

    job_id: int
    fields: dict[str, str]

    @property
    def partition(self) -> str:
        return self.fields.get("Partition", "")

    @property
    def time_limit_min(self) -> int:
        """TimeLimit ([D-]HH:MM:SS or MM:SS) in whole minutes."""
        return time_to_minutes(self.fields["TimeLimit"])

    @property
    def gpus(self) -> int:
        """GPUs asked for (TresPerJob / TresPerNode gres:gpu[:type]:N); 0 when none."""
        for key in ("TresPerJob", "TresPerNode"):
            match = re.search(r"gres:gpu(?::[A-Za-z0-9_.]+)?:(\d+)", self.fields.get(key, ""))
            if match:
                return int(match.group(1))
        return 0

    @property
    def state(self) -> str:
        return self.fields.get("JobState", "")

    @property
    def comment(self) -> str:
        return self.fields.get("Comment", "")


def time_to_minutes(text: str) -> int:
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


def parse_scontrol(text: str) -> dict[int, SlurmRecord]:
    """``scontrol show job --oneliner`` -> records by job id (values never hold spaces here)."""
    records = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "JobId" in fields:
            records[int(fields["JobId"])] = SlurmRecord(int(fields["JobId"]), fields)
    return records


@dataclass
class Submission:
    """One submission of a Snakemake job (a retry is a new submission of the same job)."""

    job: int
    rule: str
    wildcards: dict[str, str]
    resources: dict[str, str]
    slurm_id: int
    attempt: int = 1
    shell: str = ""


@dataclass
class RunLog:
    submissions: list[Submission] = field(default_factory=list)
    local_jobs: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    remote_jobs: set[int] = field(default_factory=set)  # Snakemake ids of the non-local jobs it started


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def parse_run_log(text: str) -> RunLog:
    """Submissions (with attempt numbers) and local jobs of a Snakemake log of a slurm run."""
    run = RunLog()
    blocks: dict[int, dict] = {}  # Snakemake job id -> last printed block
    current: dict | None = None
    attempts: dict[int, int] = {}
    dumped = 0  # inside a failed job's log that Snakemake prints between two lines of "="
    for line in text.splitlines():
        if line.startswith("Logfile ") and line.endswith(":"):
            dumped, current = 2, None
            continue
        if dumped:
            dumped -= line.startswith("=" * 20)
            continue
        header = JOB_BLOCK.match(line)
        if header:
            current = {"rule": header["rule"], "local": bool(header["local"]), "wildcards": {}, "resources": {}}
            continue
        if current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "jobid":
                blocks[int(value)] = current
            elif key in ("wildcards", "resources"):
                current[key] = _pairs(value)
            continue
        if current is not None and line.startswith("Shell command: "):
            current["shell"] = line.removeprefix("Shell command: ")
        current = None
        submitted = SUBMITTED.match(line)
        if submitted:
            job = int(submitted["job"])
            block = blocks[job]
            attempts[job] = attempts.get(job, 0) + 1
            run.submissions.append(
                Submission(job, block["rule"], block["wildcards"], block["resources"], int(submitted["slurm"]), attempts[job],
                           block.get("shell", ""))
            )
    for job, block in blocks.items():
        if block["local"]:
            run.local_jobs.append((block["rule"], block["wildcards"]))
        else:
            run.remote_jobs.add(job)
    return run


def expected_comment(rule: str, wildcards: dict[str, str]) -> str:
    """The ``--comment`` the slurm plugin gives a job: rule_<rule>[_wildcards_<values joined by _>]."""
    return f"rule_{rule}" + (f"_wildcards_{'_'.join(wildcards.values())}" if wildcards else "")


def shell_parts(shell: str) -> tuple[list[str], str]:
    """argv and log path of a rule's shell line ``python -m ... > LOG 2>&1``."""
    command, _, redirect = shell.partition(" > ")
    return shlex.split(command), redirect.split()[0]


def dumped_logs(text: str, log_path: str) -> str:
    """What Snakemake printed of ``log_path`` for the failed tries (between two lines of "=" after "Logfile ...:")."""
    pattern = re.compile(rf"^Logfile {re.escape(log_path)}:\n=+\n(.*?)^=+$", re.MULTILINE | re.DOTALL)
    return "".join(pattern.findall(text))


def memory_to_mb(text: str) -> int:
    """A Slurm memory field (``MinMemoryNode=1400M``, ``2G``, ``1T``; Slurm's M is the MiB ``--mem`` counts) in MB."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    number, unit = (text[:-1], text[-1].upper()) if text[-1:].isalpha() else (text, "M")
    return round(float(number) * units[unit])
