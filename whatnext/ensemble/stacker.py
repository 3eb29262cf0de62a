"""The stacker stage: nested-CV fit of the per-class log-space stacker, bagged test predictions.

``python -m whatnext.ensemble.stacker --cache-dir DIR --members FILE --out submission.csv``
(the seed's interface; ``--data`` defaults to the current directory, where the seed keeps
the challenge CSVs) reads every member's ``train-val`` and ``train-test`` caches, fits one
stacker per fold of a nested CV on the validation labels (:mod:`nested_cv`,
:mod:`stacker_model`), and writes:

- ``--out``: the submission (arg-max of the bag over the folds' models on the test caches);
- ``--report``: JSON with the held-out accuracy, NLL and ECE (mean and spread over folds) of
  the stacker and of the baselines (mean of log-probabilities, best single member), of every
  member alone and, with ``--baseline``, of the pixel baseline (``whatnext.baseline``; its
  ``train-val`` cache, scored on the same folds, never stacked) with the members that do not
  beat it (``members_below_baseline``, also listed on stderr); the members used, every member
  skipped and why, caches re-ordered by id, settings and timing;
- ``--weights``: npz with ``members`` [M], ``weights`` [F, M, C] (softmax of R), ``R``,
  ``bias`` [F, C], ``best_step`` [F], ``val_ids`` [n] and ``chunk`` [n] (each clip's fold);
- ``--test-probs`` (optional): the bagged test probabilities as a probability cache, for
  pseudo-labels and submissions; ``--oof-probs`` (optional): each validation clip's
  probabilities from the fold that held it out, for calibration and error analysis.

Skipped members are listed on stderr and in the report; ``--strict`` makes any skip an error.
The sidecar (:mod:`whatnext.ensemble.sidecar`) is this stage with the test probabilities
taken from the members' train+val twins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import click
import numpy as np
import torch

from whatnext.data.class_table import load_class_table
from whatnext.ensemble.aggregators import Aggregated, best_member, flat_prior, held_out_scores, same_in_every_fold
from whatnext.ensemble.batched_fit import FitConfig
from whatnext.data.clip_labels import ClipLabels, ClipLabelsError, read_clip_labels
from whatnext.ensemble.members import (
    CacheRequest,
    MemberError,
    MemberStack,
    aligned_probs,
    load_members,
    read_member_list,
    request_key,
)
from whatnext.ensemble.nested_cv import DEFAULT_FOLDS, MIN_FOLDS, NestedFolds, make_nested_folds
from whatnext.ensemble.scoring import out_of_fold
from whatnext.ensemble.stacker_model import StackerFit, class_major_log_probs, fit_stacker
from whatnext.inference.submission import SubmissionError, build_submission, write_submission
from whatnext.runtime.atomic import atomic_path, write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import write_prob_cache

STACKER_MEMBER_ID = "stacker"
BASELINE_ID = "baseline"


@dataclass
class StackingInputs:
    """Validation labels, test ids and the usable members' val / test probabilities."""

    val: ClipLabels
    test: ClipLabels
    stack: MemberStack
    test_fit: str  # "train" (the members themselves) or "trainval" (their sidecar twins)

    @property
    def val_probs(self) -> np.ndarray:
        return self.stack.probs[request_key("train", "val")]

    @property
    def test_probs(self) -> np.ndarray:
        return self.stack.probs[request_key(self.test_fit, "test")]


def load_stacking_inputs(cache_dir, members: list[str], data_dir, test_fit: str = "train", strict: bool = False) -> StackingInputs:
    """Labels from DATA/val.csv, ids from DATA/test.csv; members' ``train-val`` and ``{test_fit}-test`` caches."""
    num_classes = load_class_table().num_classes
    val = read_clip_labels(data_dir, "val", num_classes)
    test = read_clip_labels(data_dir, "test", num_classes)
    requests = [CacheRequest("train", "val", val.ids), CacheRequest(test_fit, "test", test.ids)]
    stack = load_members(cache_dir, members, requests, num_classes, strict=strict)
    return StackingInputs(val=val, test=test, stack=stack, test_fit=test_fit)


@dataclass
class StackerRun:
    """A fitted nested-CV stacker with its baselines, all scored on the same folds."""

    inputs: StackingInputs
    folds: NestedFolds
    fit: StackerFit
    aggregates: dict[str, Aggregated]
    config: FitConfig
    seed: int
    fit_seconds: float
    baseline: np.ndarray | None = None  # the pixel baseline's val probs [n_val, C]: scored beside the members, never stacked

    @property
    def stacker(self) -> Aggregated:
        return self.aggregates[STACKER_MEMBER_ID]

    @cached_property
    def scores(self) -> dict[str, dict]:
        """Held-out accuracy, NLL and ECE of every aggregator, by name."""
        labels = self.inputs.val.labels
        return {name: agg.held_out_scores(labels, self.folds) for name, agg in self.aggregates.items()}

    @cached_property
    def member_scores(self) -> dict[str, dict]:
        """Held-out accuracy, NLL and ECE of every stacked member alone, on the same folds."""
        labels, probs = self.inputs.val.labels, self.inputs.val_probs
        return {
            member: held_out_scores(same_in_every_fold(probs[i], self.folds), labels, self.folds)
            for i, member in enumerate(self.inputs.stack.members)
        }

    @cached_property
    def baseline_scores(self) -> dict | None:
        """Held-out accuracy, NLL and ECE of the pixel baseline on the same folds (None without one)."""
        if self.baseline is None:
            return None
        return held_out_scores(same_in_every_fold(self.baseline, self.folds), self.inputs.val.labels, self.folds)

    def members_below_baseline(self) -> list[str]:
        """Members whose mean held-out accuracy does not beat the baseline's (none without a baseline)."""
        if self.baseline_scores is None:
            return []
        floor = self.baseline_scores["accuracy"]["mean"]
        return [m for m, scores in self.member_scores.items() if scores["accuracy"]["mean"] <= floor]

    def strongest(self) -> Aggregated:
        """The aggregator with the highest mean held-out accuracy (ties: the stacker first)."""
        scores = self.scores
        return max(self.aggregates.values(), key=lambda agg: scores[agg.name]["accuracy"]["mean"])

    def out_of_fold_probs(self) -> np.ndarray:
        """[n_val, C]: each validation clip as predicted by the stacker of the fold that held it out."""
        return out_of_fold(self.stacker.fold_probs, self.folds.held_out())

    def report(self) -> dict:
        return {
            "aggregator": STACKER_MEMBER_ID,
            "test_fit": self.inputs.test_fit,
            "num_val_clips": len(self.inputs.val.ids),
            "num_test_clips": len(self.inputs.test.ids),
            "num_folds": self.folds.num_folds,
            "seed": self.seed,
            "fit_config": vars(self.config),
            "held_out": self.scores,
            "held_out_accuracy": self.scores[STACKER_MEMBER_ID]["accuracy"],
            "members_held_out": self.member_scores,
            "baseline": None if self.baseline is None else {"member": BASELINE_ID, "held_out": self.baseline_scores},
            "members_below_baseline": self.members_below_baseline(),
            "best_step": self.fit.best_step.tolist(),
            "steps_run": self.fit.steps_run,
            "fit_seconds": self.fit_seconds,
            **self.inputs.stack.report(),
        }


def load_baseline(path: str | Path, val: ClipLabels, num_classes: int) -> np.ndarray:
    """The baseline's validation probabilities [n_val, C] in ``val``'s clip order (a cache holding
    exactly the validation clips; ProbCacheError naming the file otherwise)."""
    probs, _ = aligned_probs(Path(path), CacheRequest("train", "val", val.ids), num_classes)
    return probs


def run_stacker(inputs: StackingInputs, num_folds: int, seed: int, config: FitConfig,
                baseline_val_probs: np.ndarray | None = None, folds: NestedFolds | None = None) -> StackerRun:
    """Fit the stacker on nested folds of the validation clips and bag it over the test clips; the
    baseline's validation probabilities [n_val, C], if given, are scored on the same folds. ``folds``: given
    folds (the heads of one task share theirs), else stratified ones of ``num_folds`` from ``seed``."""
    labels = inputs.val.labels
    folds = folds if folds is not None else make_nested_folds(labels, num_folds, seed)
    val_log_probs = class_major_log_probs(inputs.val_probs)
    test_log_probs = class_major_log_probs(inputs.test_probs)
    start = time.perf_counter()
    fit = fit_stacker(val_log_probs, labels, folds, config)
    fit_seconds = time.perf_counter() - start
    stacker = Aggregated(STACKER_MEMBER_ID, fit.fold_probs(val_log_probs).numpy(), fit.bagged_probs(test_log_probs).numpy())
    aggregates = {
        agg.name: agg
        for agg in (
            stacker,
            flat_prior(val_log_probs, test_log_probs, folds),
            best_member(inputs.val_probs, inputs.test_probs, labels, folds),
        )
    }
    return StackerRun(inputs, folds, fit, aggregates, config, seed, fit_seconds, baseline_val_probs)


def write_weights(path: str | Path, run: StackerRun) -> None:
    """The fold models' weights as npz (no pickle), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            members=np.asarray(run.inputs.stack.members),
            weights=run.fit.weights().numpy(),
            R=run.fit.R.numpy(),
            bias=run.fit.b.numpy(),
            best_step=run.fit.best_step,
            val_ids=run.inputs.val.ids,
            chunk=run.folds.chunk,
        )


def provenance(run: StackerRun, split: str) -> dict:
    return {
        "member": STACKER_MEMBER_ID,
        "fit": run.inputs.test_fit if split == "test" else "train",
        "split": split,
        "aggregator": STACKER_MEMBER_ID,
        "members": list(run.inputs.stack.members),
        "num_folds": run.folds.num_folds,
        "seed": run.seed,
    }


def stacking_options(command):
    """The options shared by the stacker and sidecar CLIs."""
    options = [
        click.option("--cache-dir", required=True, type=click.Path(file_okay=False), help="Probability cache root."),
        click.option("--members", "members_file", required=True, type=click.Path(dir_okay=False), help="Member list file."),
        click.option("--data", "data_dir", default=".", show_default=True, type=click.Path(file_okay=False), help="Data dir with val.csv and test.csv."),
        click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Submission CSV."),
        click.option("--report", "report_path", type=click.Path(dir_okay=False), help="JSON report [default: OUT.report.json]."),
        click.option("--weights", "weights_path", type=click.Path(dir_okay=False), help="Weights npz [default: OUT.weights.npz]."),
        click.option("--test-probs", "test_probs_path", type=click.Path(dir_okay=False), help="Write the bagged test probabilities as a cache."),
        click.option("--oof-probs", "oof_probs_path", type=click.Path(dir_okay=False), help="Write the held-out validation probabilities as a cache."),
        click.option("--folds", "num_folds", default=DEFAULT_FOLDS, show_default=True, type=click.IntRange(MIN_FOLDS), help="Nested-CV folds (= bag size)."),
        click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fold assignment."),
        click.option("--lr", default=FitConfig.lr, show_default=True, type=float, help="AdamW learning rate."),
        click.option("--max-steps", default=FitConfig.max_steps, show_default=True, type=click.IntRange(1), help="Full-batch steps at most."),
        click.option("--patience", default=FitConfig.patience, show_default=True, type=click.IntRange(1), help="Early-stopping patience (steps)."),
        click.option("--penalty", default=FitConfig.penalty, show_default=True, type=click.FloatRange(0), help="Tikhonov strength toward the flat prior."),
        click.option("--select-on", type=click.Choice(["error", "nll"]), default=FitConfig.select_on, show_default=True, help="Probe score for early stopping."),
        click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), help="The pixel baseline's train-val cache: scored on the same folds; members that do not beat it are flagged."),
        click.option("--strict", is_flag=True, help="Fail instead of skipping an unusable member."),
        click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads (more only on an otherwise idle machine)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_stage(test_fit: str, cache_dir, members_file, data_dir, out_path, report_path, weights_path, test_probs_path,
              oof_probs_path, num_folds, seed, lr, max_steps, patience, penalty, select_on, baseline_path, strict,
              threads) -> StackerRun:
    """Everything a stacking CLI does, with errors as ClickException naming the file or member."""
    torch.set_num_threads(threads)
    out_path = Path(out_path)
    try:
        members = read_member_list(members_file)
        inputs = load_stacking_inputs(cache_dir, members, data_dir, test_fit=test_fit, strict=strict)
        for skip in inputs.stack.skipped:
            click.echo(f"skipped member {skip.member} ({skip.reason}): {skip.detail}", err=True)
        baseline = None if baseline_path is None else load_baseline(baseline_path, inputs.val, load_class_table().num_classes)
        config = FitConfig(lr=lr, max_steps=max_steps, patience=patience, penalty=penalty, select_on=select_on)
        run = run_stacker(inputs, num_folds, seed, config, baseline)
        submission = build_submission(inputs.test.ids, inputs.test.ids, run.stacker.test_probs.argmax(axis=1), run.stacker.test_probs.shape[1])
    except (MemberError, ClipLabelsError, SubmissionError, ValueError) as err:
        raise BadInput(str(err)) from None
    write_weights(weights_path or out_path.with_suffix(".weights.npz"), run)
    if test_probs_path:
        write_prob_cache(test_probs_path, inputs.test.ids, run.stacker.test_probs, provenance(run, "test"))
    if oof_probs_path:
        write_prob_cache(oof_probs_path, inputs.val.ids, run.out_of_fold_probs(), provenance(run, "val"))
    report = run.report()
    write_json(report_path or out_path.with_suffix(".report.json"), report)
    write_submission(out_path, submission)
    accuracy = report["held_out_accuracy"]
    for member in report["members_below_baseline"]:
        click.echo(
            f"member {member} does not beat the baseline: held-out accuracy {run.member_scores[member]['accuracy']['mean']:.4f}"
            f" <= {run.baseline_scores['accuracy']['mean']:.4f}",
            err=True,
        )
    stack = inputs.stack
    click.echo(
        f"{len(stack.members)} members used, {len(stack.skipped)} skipped; nested-CV held-out accuracy "
        f"{accuracy['mean']:.4f} +- {accuracy['std']:.4f} over {num_folds} folds (fit {run.fit_seconds:.1f} s); wrote {out_path}"
    )
    return run


@click.command()
@stacking_options
def main(**options) -> None:
    """Fit the per-class log-space stacker with nested CV and write the bagged submission."""
    run_stage("train", **options)


if __name__ == "__main__":
    main()
