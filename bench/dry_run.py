"""Dry-run time of the paper graph (configs/paper.yaml, 95 members), target <= 10 s.

    python bench/dry_run.py [--repeats 3]

Runs ``snakemake --dry-run`` on the paper config (challenge data replaced by empty stand-in files in a
temporary folder) and ``snakemake --version`` (interpreter and Snakemake start-up), and prints the
median wall time of each and their difference, the time spent on this workflow's graph.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workflow_scripts.graph_table import job_counts  # noqa: E402


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds user+sys of the child, stdout) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def paper_config(folder: Path) -> Path:
    data = folder / "challenge"
    data.mkdir()
    for name in ("frames.zip", "train.csv", "val.csv", "test.csv"):
        (data / name).write_text("")
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    config["data"]["challenge"]["dir"] = str(data)
    path = folder / "paper.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@click.command()
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
def main(repeats: int) -> None:
    snakemake = [sys.executable, "-m", "snakemake"]
    with tempfile.TemporaryDirectory() as tmp:
        config = paper_config(Path(tmp))
        dry = [*snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", tmp, "--configfile", str(config), "--dry-run"]
        startup = [timed([*snakemake, "--version"]) for _ in range(repeats)]
        runs = [timed(dry) for _ in range(repeats)]
    jobs = sum(job_counts(runs[0][2]).values())

    def median(rows, column):
        return statistics.median(row[column] for row in rows)

    print(f"| measure (median of {repeats}) | wall s | CPU s |")
    print("| --- | --- | --- |")
    print(f"| snakemake --dry-run, paper graph ({jobs} jobs) | {median(runs, 0):.2f} | {median(runs, 1):.2f} |")
    print(f"| snakemake --version (start-up) | {median(startup, 0):.2f} | {median(startup, 1):.2f} |")
    print(f"| difference: this workflow's graph | {median(runs, 0) - median(startup, 0):.2f} | {median(runs, 1) - median(startup, 1):.2f} |")
    print("| target (wall) | 10.00 | |")


if __name__ == "__main__":
    main()
