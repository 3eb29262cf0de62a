"""Stand-in for ``python`` in the rerun tests: writes every output a stage CLI is asked for, instantly.

Called as ``python -m whatnext.<area>.<stage> ARGS``; each file holds the command line, so a
job's outputs change exactly when its command does. Never used outside tests/workflow.
It refuses to overwrite a file: Snakemake deletes a job's outputs before running it, so an existing
path is another job's output (rewriting it would make its readers look stale to the next run).
"""

import sys
from pathlib import Path

FILE_FLAGS = ("--out", "--metrics", "--report", "--table", "--weights", "--test-probs", "--oof-probs")
DIR_OUTPUTS = {
    "whatnext.data.synth": ("frames.zip", "train.csv", "val.csv", "test.csv"),
    "whatnext.data.epic_synth": ("train.csv", "val.csv", "test.csv", "video_info.csv", "verb_classes.csv", "noun_classes.csv"),
    "whatnext.baseline.pixel_logreg": ("train-val.npz", "train-test.npz", "submission.csv", "report.json"),
    "whatnext.analysis.error_decomposition": ("summary.json", "decomposition.csv", "confused_pairs.csv", "confusion.png"),
    "whatnext.analysis.report_assets": (
        "accuracies.csv", "held_out.csv", "pseudo_rounds.csv", "summary.json", "cascade_table.csv",
        "cascade_table.html", "confusion.png", "stacker_weights.png",
    ),
}
# Flags of FILE_FLAGS that name a file the stage reads (the stacker's outputs, for report_assets).
INPUT_FLAGS = {"whatnext.analysis.report_assets": ("--weights", "--oof-probs")}


def write(path: Path, text: str) -> None:
    if path.exists():
        sys.exit(f"stand-in python: refusing to overwrite {path}, an existing file (an input?)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str]) -> None:
    module, args = argv[1], argv[2:]
    text = " ".join(argv)
    for flag, value in zip(args, args[1:]):
        if module in DIR_OUTPUTS and flag in ("--out", "--out-dir"):
            for name in DIR_OUTPUTS[module]:
                write(Path(value) / name, text)
        elif flag in FILE_FLAGS and flag not in INPUT_FLAGS.get(module, ()):
            write(Path(value), text)
            if value.endswith(".npz"):
                write(Path(value).with_suffix(".json"), text)


if __name__ == "__main__":
    if sys.argv[1] != "-m":
        sys.exit(f"stand-in python: expected -m MODULE, got {sys.argv[1:]}")
    main(sys.argv[1:])
