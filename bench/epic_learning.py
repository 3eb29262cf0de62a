"""Learning check of the epic task on generated EPIC-like data (issue 19; run on demand).

    python bench/epic_learning.py [--workdir DIR] [--configfile bench/epic_learning.yaml]

Runs the epic graph of the config with the local profile (generation, members, caches, per-head stacker)
and prints, per member, validation verb / noun / action top-1 against the training-majority baseline of
each head (from its metrics JSON) and the held-out (nested-CV) scores of every member, the mean of
log-probabilities and the stacker from ``ensemble/heads/report.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import yaml

REPO = Path(__file__).resolve().parents[1]


def table(results: Path) -> str:
    rows = ["| member | val verb top-1 (majority) | val noun top-1 (majority) | val action top-1 | action top-5 |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for metrics in sorted((results / "models").glob("*/train-metrics.json")):
        m = json.loads(metrics.read_text())
        rows.append(f"| {metrics.parent.name} (T={m['model_config']['num_frames']}, {m['recipe']['loss']}, {m['epochs_run']} ep) "
                    f"| {m['val_verb_top1']:.3f} ({m['val_verb_majority_top1']:.3f}) | {m['val_noun_top1']:.3f} "
                    f"({m['val_noun_majority_top1']:.3f}) | {m['val_action_top1']:.3f} | {m['val_action_top5']:.3f} |")
    report = json.loads((results / "ensemble" / "heads" / "report.json").read_text())
    rows += ["", f"held out ({report['num_folds']} nested folds of {report['num_val_clips']} val segments), mean +- std:",
             "| | verb top-1 | noun top-1 | action top-1 | action top-5 |", "| --- | ---: | ---: | ---: | ---: |"]
    scored = {**{f"member {m}": s for m, s in report["members_held_out"].items()}, **report["held_out"]}
    for name, s in scored.items():
        rows.append(f"| {name} | " + " | ".join(f"{s[k]['mean']:.3f} +- {s[k]['std']:.3f}" for k in
                                                 ("verb_top1", "noun_top1", "action_top1", "action_top5")) + " |")
    rows.append(f"best member by action top-1: {report['best_member']}")
    return "\n".join(rows)


@click.command()
@click.option("--workdir", default="bench_runs/epic_learning", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--configfile", default=str(REPO / "bench" / "epic_learning.yaml"), show_default=True, type=click.Path(dir_okay=False))
def main(workdir: Path, configfile: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                    "--configfile", configfile, "--profile", str(REPO / "profiles" / "local")], check=True)
    results = workdir / yaml.safe_load(Path(configfile).read_text())["results"]
    click.echo(table(results))


if __name__ == "__main__":
    main()
