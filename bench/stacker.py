"""Benchmark of the nested-CV stacker on a full-size generated problem.

    python bench/stacker.py [--members 95 --val-clips 6745 --test-clips 6912 --folds 15 --threads 2]

Members have a base skill plus per-class jitter and share their errors through per-clip
difficulty (the same clips are hard for all), so they score ~0.4-0.55 alone.
Prints one table: wall time of the batched fit (folds in a batch dimension) against
:func:`fit_per_fold_loop`, a plain per-fold Python loop written independently of the
package's batched code (it must agree to 1e-5), and held-out accuracy (mean and spread over
the same nested folds) of the stacker, the mean of log-probabilities, the best single member,
and scikit-learn's LogisticRegression on the stacked log-probabilities (fit on each fold's
train + probe clips). Never run in CI.
"""

from __future__ import annotations

import time

import click
import numpy as np
import torch
import torch.nn.functional as F

from whatnext.data.class_table import load_class_table
from whatnext.ensemble.aggregators import best_member, flat_prior
from whatnext.ensemble.batched_fit import FitConfig
from whatnext.ensemble.nested_cv import NestedFolds, make_nested_folds
from whatnext.ensemble.scoring import fold_accuracy
from whatnext.ensemble.stacker_model import PROB_FLOOR, class_major_log_probs, fit_stacker
from whatnext.ensemble.synthetic_members import generate_members


def fit_per_fold_loop(probs: np.ndarray, labels: np.ndarray, folds: NestedFolds, config: FitConfig) -> dict[str, np.ndarray]:
    """Reference: one fold at a time, the model written out with einsum; probs [M, n, C].

    Returns ``R`` [F, M, C], ``b`` [F, C] and ``best_step`` [F], chosen as the package does:
    lowest probe score (cross-entropy or top-1 error), measured before each update, patience in steps.
    """
    log_p = torch.log(torch.as_tensor(probs).clamp_min(PROB_FLOOR))  # [M, n, C]
    y = torch.as_tensor(labels)
    members, _, classes = log_p.shape
    out = {"R": [], "b": [], "best_step": []}
    for train, probe in zip(folds.train(), folds.probe()):
        R = torch.zeros(members, classes, requires_grad=True)
        b = torch.zeros(classes, requires_grad=True)
        optimiser = torch.optim.AdamW([R, b], lr=config.lr, eps=config.adam_eps, weight_decay=0.0)
        best, best_loss, best_step = (R.detach().clone(), b.detach().clone()), float("inf"), 0
        for step in range(config.max_steps + 1):
            logits = torch.einsum("ic,inc->nc", torch.softmax(R, dim=0), log_p) + b
            probe_logits, probe_labels = logits[torch.as_tensor(probe)], y[torch.as_tensor(probe)]
            if config.select_on == "nll":
                probe_loss = F.cross_entropy(probe_logits, probe_labels).item()
            else:
                probe_loss = (probe_logits.argmax(dim=1) != probe_labels).float().mean().item()
            if probe_loss < best_loss:
                best, best_loss, best_step = (R.detach().clone(), b.detach().clone()), probe_loss, step
            if step - best_step >= config.patience or step == config.max_steps:
                break
            loss = F.cross_entropy(logits[torch.as_tensor(train)], y[torch.as_tensor(train)])
            loss = loss + config.penalty * (R.pow(2).sum() + b.pow(2).sum())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        out["R"].append(best[0])
        out["b"].append(best[1])
        out["best_step"].append(best_step)
    return {"R": torch.stack(out["R"]).numpy(), "b": torch.stack(out["b"]).numpy(), "best_step": np.array(out["best_step"])}


def generate_problem(num_members: int, num_val: int, num_test: int, seed: int, class_jitter: float = 1.0):
    """Val and test member probabilities [M, n, C] and val labels, class mix of the challenge's val split.

    Members share their errors through per-clip difficulty (not through additive shared logit
    noise, which linear contrasts of members cancel exactly and so flatters logistic regression).
    """
    table = load_class_table()
    rng = np.random.default_rng(seed)
    strength = rng.uniform(2.0, 3.0, size=(num_members, 1)) + rng.normal(0.0, class_jitter, size=(num_members, table.num_classes))
    strength = strength.clip(0).astype(np.float32)
    kwargs = dict(shared_noise=0.0, own_noise=1.0, difficulty_spread=2.0, class_weights=np.array(table.val_clips, dtype=float))
    val = generate_members(strength, num_val, seed=seed + 1, **kwargs)
    test = generate_members(strength, num_test, seed=seed + 2, **kwargs)
    return val.probs, test.probs, val.labels


def sklearn_logistic(val_probs: np.ndarray, labels: np.ndarray, folds: NestedFolds, max_folds: int) -> np.ndarray:
    """Held-out accuracy of LogisticRegression on the flattened log-probabilities [n, M*C], first ``max_folds`` folds."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    features = np.log(np.maximum(val_probs, PROB_FLOOR)).transpose(1, 0, 2).reshape(val_probs.shape[1], -1)
    accuracy = []
    with threadpool_limits(torch.get_num_threads()):
        for held_out in folds.held_out()[:max_folds]:
            model = LogisticRegression(max_iter=300).fit(features[~held_out], labels[~held_out])
            accuracy.append((model.predict(features[held_out]) == labels[held_out]).mean())
    return np.array(accuracy)


class Timer:
    """Wall and CPU seconds of a block (CPU time is the fairer figure on a shared machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def row(name: str, timer: Timer | None, accuracy: np.ndarray | None) -> str:
    time_cells = f"{timer.wall:8.1f} | {timer.cpu:8.1f}" if timer is not None else f"{'':>8} | {'':>8}"
    acc_cell = f"{accuracy.mean():.4f} +- {accuracy.std(ddof=1):.4f}" if accuracy is not None else ""
    return f"| {name:<50} | {time_cells} | {acc_cell:<17} |"


@click.command()
@click.option("--members", "num_members", default=95, show_default=True)
@click.option("--val-clips", default=6745, show_default=True)
@click.option("--test-clips", default=6912, show_default=True)
@click.option("--folds", "num_folds", default=15, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--class-jitter", default=1.0, show_default=True, help="Spread of each member's per-class strength (specialisation).")
@click.option("--select-on", type=click.Choice(["nll", "error"]), default=FitConfig.select_on, show_default=True, help="Probe score for early stopping.")
@click.option("--skip-loop", is_flag=True, help="Skip the per-fold loop reference.")
@click.option("--sklearn-folds", default=15, show_default=True, help="Fit the scikit-learn baseline on this many folds (0: skip).")
def main(num_members, val_clips, test_clips, num_folds, seed, threads, class_jitter, select_on, skip_loop, sklearn_folds) -> None:
    torch.set_num_threads(threads)
    val_probs, test_probs, labels = generate_problem(num_members, val_clips, test_clips, seed, class_jitter)
    folds = make_nested_folds(labels, num_folds, seed)
    config = FitConfig(select_on=select_on)
    held_out = folds.held_out()
    val_log, test_log = class_major_log_probs(val_probs), class_major_log_probs(test_probs)
    fit_stacker(val_log[:, :2, :50], labels[:50], make_nested_folds(labels[:50], 3, 0), FitConfig(max_steps=2))  # warm-up

    with Timer() as batched:
        fit = fit_stacker(val_log, labels, folds, config)
        fold_probs = fit.fold_probs(val_log)
        fit.bagged_probs(test_log)
    stacker_acc = fold_accuracy(fold_probs, labels, held_out)

    click.echo(f"problem: {num_members} members x {val_clips} val clips x {val_probs.shape[2]} classes, "
               f"{test_clips} test clips, {num_folds} folds (nested), class jitter {class_jitter}, {threads} threads, {config}")
    click.echo(f"batched fit: {fit.steps_run} steps, best steps {fit.best_step.min()}-{fit.best_step.max()}")
    click.echo(f"| {'method':<50} | {'wall s':>8} | {'CPU s':>8} | {'held-out acc':<17} |\n|{'-' * 52}|{'-' * 10}|{'-' * 10}|{'-' * 19}|")
    click.echo(row("stacker, folds batched (whatnext)", batched, stacker_acc))
    if not skip_loop:
        with Timer() as loop:
            reference = fit_per_fold_loop(val_probs, labels, folds, config)
        ref_probs = torch.softmax(
            torch.einsum("fic,inc->fnc", torch.softmax(torch.as_tensor(reference["R"]), 1), torch.log(torch.as_tensor(val_probs).clamp_min(PROB_FLOOR)))
            + torch.as_tensor(reference["b"])[:, None, :], -1).numpy()
        click.echo(row("stacker, per-fold loop reference", loop, fold_accuracy(ref_probs, labels, held_out)))
        click.echo(f"speed-up {loop.wall / batched.wall:.1f}x wall, {loop.cpu / batched.cpu:.1f}x CPU; max |weight diff| "
                   f"{np.abs(torch.softmax(torch.as_tensor(reference['R']), 1).numpy() - fit.weights().numpy()).max():.2e}, "
                   f"max |bias diff| {np.abs(reference['b'] - fit.b.numpy()).max():.2e}, "
                   f"max |prob diff| {np.abs(ref_probs - fold_probs.numpy()).max():.2e}, "
                   f"same best steps: {np.array_equal(reference['best_step'], fit.best_step)}")
    click.echo(row("mean of log-probabilities", None, fold_accuracy(flat_prior(val_log, test_log, folds).fold_probs, labels, held_out)))
    click.echo(row("best single member (chosen per fold)", None, fold_accuracy(best_member(val_probs, test_probs, labels, folds).fold_probs, labels, held_out)))
    if sklearn_folds:
        with Timer() as sk:
            sk_acc = sklearn_logistic(val_probs, labels, folds, sklearn_folds)
        click.echo(row(f"sklearn LogisticRegression, stacked log P ({len(sk_acc)} folds)", sk, sk_acc))


if __name__ == "__main__":
    main()
