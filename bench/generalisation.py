"""How the main job does on every preset of the generated data: the table of issue 14, point 6.

    python bench/generalisation.py                                  # the main job's graph on every preset
    python bench/generalisation.py --presets classic,murky --scale 0.01 --no-twins   # small and quick
    python bench/generalisation.py --table-only                     # reprint from finished runs

For each preset it writes ``config.yaml`` (the repository's, with ``data.synth`` set to the preset, the
scale, the size and the seed, and ``results`` set to ``ROOT/<preset>``) and runs Snakemake on it with the
local profile, one preset after the other, each in its own results dir. ``--no-twins`` is the documented
smaller graph: the same members, without their train+val twins (the submission is then the stacker's).
Then, per preset, from the run's files:

- baseline: the pixel baseline's nested-CV held-out accuracy (``ensemble/stacker/report.json``);
- best member, mean of log-probs, stacker: the same, on the same folds;
- stacker - baseline;
- submission test top-1 (``submission.csv`` against ``data/synth_test_labels.csv``) and the baseline's;
- members below the baseline (of how many), and the wall time of the run.

``murky`` is the held-out preset (``whatnext.data.synth_presets.HELD_OUT``): report only. Runs on demand,
never in CI. The table goes to stdout (markdown) and ``ROOT/generalisation.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from whatnext.data.synth_presets import HELD_OUT, PRESETS  # noqa: E402


def preset_config(preset: str, root: Path, scale: float, size: int | None, seed: int, twins: bool) -> dict:
    """The repository's config.yaml pointed at one preset and its own results dir."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["results"] = str(root / preset)
    config["data"]["synth"] = {"preset": preset, "scale": scale, "size": size, "seed": seed}
    config["twins"] = twins
    return config


def run_preset(preset: str, root: Path, config: dict, cores: int) -> float:
    """Run the graph of ``config`` (Snakemake, local profile); returns wall seconds; raises on failure."""
    path = root / f"{preset}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
               "--profile", str(REPO / "profiles" / "local"), "--configfile", str(path), "--cores", str(cores)]
    start = time.time()
    with open(root / f"{preset}.snakemake.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"{preset}: snakemake failed (exit {result.returncode}); see {root / f'{preset}.snakemake.log'}")
    return time.time() - start


def test_top1(submission: Path, truth: Path) -> float:
    """Top-1 of a submission CSV (video_name, predicted_class) against video_id,label."""
    predicted = pd.read_csv(submission, dtype=str).set_index("video_name")["predicted_class"].astype(int)
    labels = pd.read_csv(truth, dtype=str)
    labels.index = "video_" + labels["video_id"]
    return float((predicted == labels["label"].astype(int).loc[predicted.index]).mean())


def preset_row(preset: str, results: Path, wall_s: float | None) -> dict:
    """The table row of one finished run."""
    report = json.loads((results / "ensemble" / "stacker" / "report.json").read_text())
    held_out = {name: scores["accuracy"]["mean"] for name, scores in report["held_out"].items()}
    baseline = report["baseline"]["held_out"]["accuracy"]["mean"]
    truth = results / "data" / "synth_test_labels.csv"
    return {
        "preset": preset + (" (held out)" if preset == HELD_OUT else ""),
        "baseline": baseline,
        "best member": held_out["best_member"],
        "mean log-probs": held_out["mean_log_probs"],
        "stacker": held_out["stacker"],
        "stacker - baseline": held_out["stacker"] - baseline,
        "submission test": test_top1(results / "submission.csv", truth),
        "baseline test": test_top1(results / "baseline" / "submission.csv", truth),
        "members below baseline": f"{len(report['members_below_baseline'])} of {len(report['members_used'])}",
        "val clips": report["num_val_clips"],
        "wall min": None if wall_s is None else round(wall_s / 60, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS), help="Comma-separated presets (default: all).")
    parser.add_argument("--scale", type=float, default=0.03, help="data.synth.scale (the main job's: 0.03).")
    parser.add_argument("--size", type=int, default=None, help="Frame side, px (default: each preset's own).")
    parser.add_argument("--seed", type=int, default=0, help="data.synth.seed.")
    parser.add_argument("--no-twins", action="store_true", help="The smaller graph: no train+val twins.")
    parser.add_argument("--cores", type=int, default=2, help="Snakemake --cores.")
    parser.add_argument("--root", type=Path, default=REPO / "results" / "generalisation", help="Results root.")
    parser.add_argument("--table-only", action="store_true", help="Only reprint the table from finished runs.")
    args = parser.parse_args()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        parser.error(f"unknown presets {unknown}; presets: {', '.join(PRESETS)}")
    args.root.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in presets:
        wall_s = None
        if not args.table_only:
            config = preset_config(preset, args.root, args.scale, args.size, args.seed, not args.no_twins)
            wall_s = run_preset(preset, args.root, config, args.cores)
        rows.append(preset_row(preset, args.root / preset, wall_s))
        print(f"{preset} done: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    (args.root / "generalisation.json").write_text(json.dumps(
        {"scale": args.scale, "size": args.size, "twins": not args.no_twins, "rows": rows}, indent=2))
    print(f"scale {args.scale}, size {args.size or 'per preset'}, twins {not args.no_twins}; held-out accuracies are "
          f"nested-CV means on the stacker's folds of the validation clips")
    print(markdown_table(rows))


def markdown_table(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as a markdown table; floats with 3 decimals."""
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" if k == "preset" else "---:" for k in keys) + " |"]
    lines += ["| " + " | ".join(cell(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
