"""``python -m whatnext.ensemble.head_stacker``: the stacker of a task with several label heads (EPIC's verb
and noun), fitted per head, and the task's submission.

Reads every member's ``train-val`` and ``train-test`` caches (heads side by side, ``head_sizes``; see
:mod:`whatnext.runtime.prob_cache`), the validation labels from ``val.csv`` (``narration_id, verb_class,
noun_class``) and the test ids from ``test.csv``. One set of nested folds, stratified by the (verb, noun)
pair, is shared by the heads; on it the per-class log-space stacker (:mod:`whatnext.ensemble.stacker`) is
fitted once per head, so each clip's held-out verb and noun come from the same fold's models.

Action accuracy: an action counts when both heads are right. The action prediction is the joint arg-max of
p(verb) x p(noun), which for independent heads is the pair of the heads' own arg-maxes; top-5 action recall
ranks the verb x noun pairs by that product (:func:`whatnext.tasks.action_topk_hits`). No verb-noun
co-occurrence prior is applied: with long-tailed pairs most validation actions are rare or unseen in train,
and a prior learned from train would push them out (README, "Other tasks: EPIC-KITCHENS-100").

Writes ``--out`` (``submission.pt``: a list of ``{"narration_id", "verb_output" float32 [V], "noun_output"
[N]}``, one per test segment in ``test.csv`` order, the bagged stacker's probabilities), ``--report`` (JSON:
per head the held-out accuracy of the stacker, the mean of log-probabilities, the best member and every member;
the held-out verb / noun / action top-1 and top-5 of the stacker, the mean and every member, and the best
member by action top-1), ``--test-probs`` (the bagged test probabilities as a cache). Light install only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import click
import numpy as np
import torch

from whatnext.data.clip_labels import ClipLabels
from whatnext.ensemble.batched_fit import FitConfig
from whatnext.ensemble.members import CacheRequest, MemberError, MemberStack, load_members, read_member_list, request_key
from whatnext.ensemble.nested_cv import DEFAULT_FOLDS, MIN_FOLDS, make_nested_folds
from whatnext.ensemble.stacker import STACKER_MEMBER_ID, StackingInputs, run_stacker
from whatnext.runtime.atomic import save_torch, write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.prob_cache import write_prob_cache
from whatnext.tasks import Task, TaskError, load_task

MEAN_ID = "mean_log_probs"


def read_epic_split(data_dir: Path, split: str, task: Task) -> ClipLabels:
    """Narration ids and packed labels (-1 for test) of ``{split}.csv``; bad rows raise ValueError naming the file."""
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise ValueError(f"{path}: missing split CSV")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = ["narration_id"] + ([] if split == "test" else ["verb_class", "noun_class"])
    if rows and any(c not in rows[0] for c in columns):
        raise ValueError(f"{path}: needs columns {columns}, has {list(rows[0])}")
    ids = np.asarray([r["narration_id"] for r in rows])
    if split == "test":
        return ClipLabels(ids, np.full(len(ids), -1, np.int64))
    heads = dict(task.heads)
    classes = {}
    for head in ("verb", "noun"):
        values = np.asarray([int(r[f"{head}_class"]) for r in rows], np.int64)
        bad = (values < 0) | (values >= heads[head])
        if bad.any():
            raise ValueError(f"{path}: segment {ids[bad][0]}: {head}_class {values[bad][0]} outside 0..{heads[head] - 1}")
        classes[head] = values
    return ClipLabels(ids, task.encode(classes["verb"], classes["noun"]))


def head_inputs(task: Task, head: str, val: ClipLabels, test: ClipLabels, stack: MemberStack) -> StackingInputs:
    """The stacking inputs of one head: its label and its columns of every member's caches."""
    cut = task.slices()[head]
    labels = task.decode(val.labels)[head]
    probs = {key: value[..., cut] for key, value in stack.probs.items()}
    return StackingInputs(ClipLabels(val.ids, labels), test, MemberStack(stack.members, probs), "train")


def run_heads(task: Task, val: ClipLabels, test: ClipLabels, stack: MemberStack, num_folds: int, seed: int,
              config: FitConfig) -> tuple[dict, np.ndarray]:
    """Fit the stacker per head on shared folds; returns (report, bagged test probs [n_test, num_outputs])."""
    folds = make_nested_folds(val.labels, num_folds, seed)
    held_out = folds.held_out()
    runs = {head: run_stacker(head_inputs(task, head, val, test, stack), num_folds, seed, config, folds=folds)
            for head in task.head_names}
    joined = {name: np.concatenate([runs[h].aggregates[name].fold_probs for h in task.head_names], axis=-1)
              for name in (STACKER_MEMBER_ID, MEAN_ID)}
    aggregate_scores = {name: _held_out(task, probs, val.labels, held_out) for name, probs in joined.items()}
    val_probs = stack.probs[request_key("train", "val")]
    member_scores = {m: _held_out(task, val_probs[i], val.labels, held_out) for i, m in enumerate(stack.members)}
    best = max(member_scores, key=lambda m: member_scores[m]["action_top1"]["mean"])
    test_probs = np.concatenate([runs[h].stacker.test_probs for h in task.head_names], axis=-1)
    report = {
        "task": task.name,
        "heads": dict(task.heads),
        "num_val_clips": len(val.ids),
        "num_test_clips": len(test.ids),
        "num_folds": folds.num_folds,
        "seed": seed,
        "action_rule": "joint arg-max of p(verb) x p(noun); top-5 over verb x noun pairs by that product",
        "held_out": aggregate_scores,
        "members_held_out": member_scores,
        "best_member": best,
        "per_head": {head: {"held_out": run.scores, "members_held_out": run.member_scores} for head, run in runs.items()},
        **stack.report(),
    }
    return report, test_probs


def _held_out(task: Task, fold_probs: np.ndarray, labels: np.ndarray, held_out: np.ndarray) -> dict:
    """Task metrics of per-fold probabilities [F, n, K] (or one set [n, K] for every fold: a member) on each
    fold's held-out clips (mean, std, per fold)."""
    per_fold = [task.metrics((fold_probs[f] if fold_probs.ndim == 3 else fold_probs)[mask], labels[mask])
                for f, mask in enumerate(held_out)]
    out = {}
    for name in per_fold[0]:
        values = np.array([scores[name] for scores in per_fold])
        out[name] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "per_fold": values.tolist()}
    return out


def write_submission_pt(path: Path, task: Task, ids: np.ndarray, probs: np.ndarray) -> None:
    """The EPIC submission: ``[{"narration_id", "verb_output" [V], "noun_output" [N]}]`` in ``ids`` order, atomically."""
    blocks = task.split(torch.as_tensor(probs, dtype=torch.float32))
    entries = [{"narration_id": str(nid), **{f"{head}_output": blocks[head][i].clone() for head in task.head_names}}
               for i, nid in enumerate(ids)]
    save_torch(entries, path)


@click.command()
@click.option("--task", "task_name", default="epic", show_default=True, type=click.Choice(["epic"]), help="A task of several heads.")
@click.option("--cache-dir", required=True, type=click.Path(file_okay=False), help="Probability cache root.")
@click.option("--members", "members_file", required=True, type=click.Path(dir_okay=False), help="Member list file.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="EPIC data dir (val.csv, test.csv, class files).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="submission.pt to write.")
@click.option("--report", "report_path", required=True, type=click.Path(dir_okay=False), help="JSON report.")
@click.option("--test-probs", "test_probs_path", type=click.Path(dir_okay=False), help="Write the bagged test probabilities as a cache.")
@click.option("--folds", "num_folds", default=DEFAULT_FOLDS, show_default=True, type=click.IntRange(MIN_FOLDS), help="Nested-CV folds (= bag size).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fold assignment.")
@click.option("--strict", is_flag=True, help="Fail instead of skipping an unusable member.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads.")
def main(task_name, cache_dir, members_file, data_dir, out_path, report_path, test_probs_path, num_folds, seed, strict, threads):
    """Fit the stacker per head with nested CV and write submission.pt."""
    torch.set_num_threads(threads)
    try:
        task = load_task(task_name, data_dir)
        val, test = read_epic_split(data_dir, "val", task), read_epic_split(data_dir, "test", task)
        requests = [CacheRequest("train", "val", val.ids), CacheRequest("train", "test", test.ids)]
        stack = load_members(cache_dir, read_member_list(members_file), requests, task.num_outputs, strict=strict)
        for skip in stack.skipped:
            click.echo(f"skipped member {skip.member} ({skip.reason}): {skip.detail}", err=True)
        report, test_probs = run_heads(task, val, test, stack, num_folds, seed, FitConfig())
    except (MemberError, TaskError, ValueError) as err:
        raise BadInput(str(err)) from None
    if test_probs_path:
        write_prob_cache(test_probs_path, test.ids, test_probs, {"member": STACKER_MEMBER_ID, "fit": "train", "split": "test",
                                                                  "members": list(stack.members)}, head_sizes=task.sizes)
    write_json(report_path, report)
    write_submission_pt(out_path, task, test.ids, test_probs)
    held = report["held_out"][STACKER_MEMBER_ID]
    best = report["members_held_out"][report["best_member"]]
    click.echo(f"{len(stack.members)} members; held-out action top-1 {held['action_top1']['mean']:.4f} (verb "
               f"{held['verb_top1']['mean']:.4f}, noun {held['noun_top1']['mean']:.4f}); best member {report['best_member']} "
               f"{best['action_top1']['mean']:.4f}; wrote {out_path}", err=True)


if __name__ == "__main__":
    main()
