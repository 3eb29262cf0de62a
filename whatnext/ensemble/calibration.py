"""Calibration and stacking baselines, compared with the stacker on the same nested folds.

Every method is fitted per fold on that fold's clips only and scored on its held-out clips
(accuracy, NLL in nats, top-1 ECE with 15 bins; mean and spread over folds):

- ``mean_log_probs``: the flat prior, nothing fitted;
- ``stacker``: the per-class log-space stacker (train split, early-stopped on the probe);
- ``... + temperature``: one temperature per fold, fitted on the probe split, dividing the
  logits of the method above (accuracy unchanged, NLL and ECE calibrated);
- ``linear``: multinomial logistic regression on the flattened log-probabilities [M*C],
  started at (and pulled toward) the flat prior, train split, early-stopped on the probe;
- ``mlp``: the flat prior plus a one-hidden-layer MLP of the standardised log-probabilities
  (output layer zero-initialised), fitted the same way.

``python -m whatnext.ensemble.calibration --cache-dir DIR --members FILE --data DATA
--report R.json [--table T.md]`` writes the comparison as JSON and a markdown table.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from whatnext.ensemble.batched_fit import FitConfig, Params, fit_batched
from whatnext.data.clip_labels import ClipLabelsError
from whatnext.ensemble.members import MemberError, read_member_list
from whatnext.ensemble.nested_cv import DEFAULT_FOLDS, MIN_FOLDS, NestedFolds, make_nested_folds
from whatnext.ensemble.scoring import fold_accuracy, fold_ece, fold_nll, summary
from whatnext.ensemble.stacker import load_stacking_inputs
from whatnext.ensemble.stacker_model import class_major_log_probs, fit_stacker, stacker_logits
from whatnext.runtime.atomic import atomic_open, write_json
from whatnext.runtime.errors import BadInput

TEMPERATURE_FIT = FitConfig(lr=0.05, max_steps=200, patience=200, penalty=0.0, select_on="nll")
# The linear and MLP baselines have ~M*C*C parameters per fold: smaller steps, stronger pull.
BASELINE_FIT = FitConfig(lr=0.01, max_steps=300, patience=30, penalty=1e-3)


def fit_temperature(logits: torch.Tensor, labels: np.ndarray, folds: NestedFolds) -> torch.Tensor:
    """One temperature per fold minimising probe NLL of logits [F, n, C]; returns T [F]."""
    probe = folds.probe()
    fit = fit_batched(
        {"log_t": torch.zeros(folds.num_folds)},
        lambda p: logits / p["log_t"].exp()[:, None, None],
        lambda p: torch.zeros(folds.num_folds),
        labels,
        probe,
        probe,
        TEMPERATURE_FIT,
    )
    return fit.params["log_t"].exp()


def flattened_features(log_probs: torch.Tensor) -> torch.Tensor:
    """[C, M, n] log-probabilities -> [n, M*C] features (member-major)."""
    classes, members, clips = log_probs.shape
    return log_probs.permute(2, 1, 0).reshape(clips, members * classes)


def flat_prior_logits(log_probs: torch.Tensor, folds: int) -> torch.Tensor:
    """[C, M, n] -> the mean of log-probabilities for every fold, [F, n, C]."""
    return log_probs.mean(dim=1).T.expand(folds, -1, -1)


def fit_linear(log_probs: torch.Tensor, labels: np.ndarray, folds: NestedFolds, config: FitConfig) -> torch.Tensor:
    """Logistic regression on [M*C] log-probabilities, from the flat prior; returns held-out-ready logits [F, n, C]."""
    classes, members, _ = log_probs.shape
    features = flattened_features(log_probs)
    prior = torch.zeros(members * classes, classes)
    prior[torch.arange(members * classes), torch.arange(members * classes) % classes] = 1.0 / members
    init = {"A": prior.expand(folds.num_folds, -1, -1).clone(), "b": torch.zeros(folds.num_folds, classes)}

    def logits(p: Params) -> torch.Tensor:
        return torch.einsum("nd,fdc->fnc", features, p["A"]) + p["b"][:, None, :]

    def penalty(p: Params) -> torch.Tensor:
        return (p["A"] - prior).pow(2).sum(dim=(1, 2)) + p["b"].pow(2).sum(dim=1)

    fit = fit_batched(init, logits, penalty, labels, folds.train(), folds.probe(), config)
    with torch.no_grad():
        return logits(fit.params)


def fit_mlp(log_probs: torch.Tensor, labels: np.ndarray, folds: NestedFolds, config: FitConfig, hidden: int, seed: int) -> torch.Tensor:
    """Flat prior + MLP(standardised log-probabilities) residual; returns logits [F, n, C]."""
    classes, _, _ = log_probs.shape
    features = flattened_features(log_probs)  # [n, D]
    train = torch.as_tensor(folds.train(), dtype=torch.float32)  # [F, n]
    count = train.sum(dim=1, keepdim=True)
    mean = train @ features / count  # [F, D]: statistics of each fold's training clips only
    std = ((train @ features.pow(2)) / count - mean.pow(2)).clamp_min(1e-6).sqrt()
    prior = flat_prior_logits(log_probs, folds.num_folds)
    generator = torch.Generator().manual_seed(seed)
    dim = features.shape[1]
    init = {
        "W1": torch.randn(folds.num_folds, dim, hidden, generator=generator) / math.sqrt(dim),
        "b1": torch.zeros(folds.num_folds, hidden),
        "W2": torch.zeros(folds.num_folds, hidden, classes),
        "b2": torch.zeros(folds.num_folds, classes),
    }

    def logits(p: Params) -> torch.Tensor:
        standardised = (features[None] - mean[:, None, :]) / std[:, None, :]  # [F, n, D]
        h = torch.nn.functional.gelu(torch.bmm(standardised, p["W1"]) + p["b1"][:, None, :])
        return prior + torch.bmm(h, p["W2"]) + p["b2"][:, None, :]

    def penalty(p: Params) -> torch.Tensor:
        return sum(v.pow(2).flatten(1).sum(dim=1) for v in p.values())

    fit = fit_batched(init, logits, penalty, labels, folds.train(), folds.probe(), config)
    with torch.no_grad():
        return logits(fit.params)


def compare(val_probs: np.ndarray, labels: np.ndarray, folds: NestedFolds, config: FitConfig,
            baseline_config: FitConfig = BASELINE_FIT, hidden: int = 32, seed: int = 0) -> pd.DataFrame:
    """Held-out accuracy / NLL / ECE (mean, std over folds) of every method; val_probs [M, n, C].

    ``config`` fits the stacker, ``baseline_config`` the linear and MLP baselines.
    """
    log_probs = class_major_log_probs(val_probs)
    stacker = fit_stacker(log_probs, labels, folds, config)
    with torch.no_grad():
        base = {
            "mean_log_probs": flat_prior_logits(log_probs, folds.num_folds),
            "stacker": stacker_logits(stacker.params, log_probs),
        }
    methods = {}
    for name, logits in base.items():
        methods[name] = logits
        methods[f"{name} + temperature"] = logits / fit_temperature(logits, labels, folds)[:, None, None]
    methods["linear"] = fit_linear(log_probs, labels, folds, baseline_config)
    methods["mlp"] = fit_mlp(log_probs, labels, folds, baseline_config, hidden, seed)
    held_out = folds.held_out()
    rows = []
    for name, logits in methods.items():
        probs = torch.softmax(logits, dim=-1).numpy()
        scores = {
            "accuracy": summary(fold_accuracy(probs, labels, held_out)),
            "nll": summary(fold_nll(probs, labels, held_out)),
            "ece": summary(fold_ece(probs, labels, held_out)),
        }
        rows.append({"method": name, **{f"{k}_{s}": v[s] for k, v in scores.items() for s in ("mean", "std")}})
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| method | held-out accuracy | NLL (nats) | ECE |", "|---|---|---|---|"]
    for r in frame.itertuples():
        lines.append(f"| {r.method} | {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f} | {r.nll_mean:.4f} ± {r.nll_std:.4f} | {r.ece_mean:.4f} ± {r.ece_std:.4f} |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--cache-dir", required=True, type=click.Path(file_okay=False), help="Probability cache root.")
@click.option("--members", "members_file", required=True, type=click.Path(dir_okay=False), help="Member list file.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Data dir (val.csv, test.csv).")
@click.option("--report", "report_path", required=True, type=click.Path(dir_okay=False), help="JSON comparison to write.")
@click.option("--table", "table_path", type=click.Path(dir_okay=False), help="Markdown table to write.")
@click.option("--folds", "num_folds", default=DEFAULT_FOLDS, show_default=True, type=click.IntRange(MIN_FOLDS), help="Nested-CV folds.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the folds and the MLP initialisation.")
@click.option("--max-steps", default=FitConfig.max_steps, show_default=True, type=click.IntRange(1), help="Full-batch steps at most, per fit.")
@click.option("--hidden", default=32, show_default=True, type=click.IntRange(1), help="MLP hidden units.")
@click.option("--strict", is_flag=True, help="Fail instead of skipping an unusable member.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads.")
def main(cache_dir, members_file, data_dir, report_path, table_path, num_folds, seed, max_steps, hidden, strict, threads) -> None:
    """Compare temperature scaling and linear / MLP stacking with the stacker on held-out clips."""
    torch.set_num_threads(threads)
    try:
        inputs = load_stacking_inputs(cache_dir, read_member_list(members_file), data_dir, strict=strict)
        folds = make_nested_folds(inputs.val.labels, num_folds, seed)
        frame = compare(inputs.val_probs, inputs.val.labels, folds, FitConfig(max_steps=max_steps),
                        dataclasses.replace(BASELINE_FIT, max_steps=max_steps), hidden, seed)
    except (MemberError, ClipLabelsError, ValueError) as err:
        raise BadInput(str(err)) from None
    for skip in inputs.stack.skipped:
        click.echo(f"skipped member {skip.member} ({skip.reason}): {skip.detail}", err=True)
    table = markdown_table(frame)
    write_json(report_path, {"num_folds": num_folds, "seed": seed, "methods": frame.to_dict(orient="records"), **inputs.stack.report()})
    if table_path:
        with atomic_open(Path(table_path), "w", encoding="utf-8") as handle:
            handle.write(table)
    click.echo(table, nl=False)


if __name__ == "__main__":
    main()
