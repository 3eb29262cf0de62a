"""The per-class log-space stacker fitted with nested CV on constructed members."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from whatnext.ensemble.batched_fit import FitConfig
from whatnext.ensemble.nested_cv import make_nested_folds
from whatnext.ensemble.scoring import fold_accuracy
from whatnext.ensemble.stacker_model import class_major_log_probs, fit_stacker, flat_prior_params, stacker_logits
from whatnext.ensemble.synthetic_members import generate_members

CONFIG = FitConfig(lr=0.2, max_steps=100, patience=15, penalty=1e-5)


def specialists(num_clips=600, seed=0):
    strength = np.full((3, 33), 0.5, dtype=np.float32)
    for i in range(3):
        strength[i, i::3] = 4.0
    return generate_members(strength, num_clips, seed=seed)


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    members = specialists()
    folds = make_nested_folds(members.labels, 5, seed=0)
    log_probs = class_major_log_probs(members.probs)
    return members, folds, log_probs, fit_stacker(log_probs, members.labels, folds, CONFIG)


def test_flat_prior_is_the_mean_of_log_probabilities():
    probs = np.array([[[0.5, 0.25, 0.25]], [[0.125, 0.5, 0.375]]], dtype=np.float32)  # [M=2, n=1, C=3]
    logits = stacker_logits(flat_prior_params(1, 2, 3), class_major_log_probs(probs))
    np.testing.assert_allclose(logits[0, 0].numpy(), 0.5 * (np.log(probs[0, 0]) + np.log(probs[1, 0])), rtol=1e-6)


def test_specialists_get_the_weight_on_their_own_classes(fitted):
    _, _, _, fit = fitted
    weights = fit.weights().numpy()  # [F, M, C]
    specialist = np.arange(33) % 3
    own_weight = weights[:, specialist, np.arange(33)]  # [F, C]
    assert (own_weight > 1 / 3).all()
    assert np.median(own_weight) > 0.6


def test_stacker_beats_uniform_averaging_on_held_out_clips(fitted):
    members, folds, log_probs, fit = fitted
    held_out = folds.held_out()
    stacked = fold_accuracy(fit.fold_probs(log_probs), members.labels, held_out)
    flat = torch.softmax(stacker_logits(flat_prior_params(5, 3, 33), log_probs), dim=-1)
    uniform = fold_accuracy(flat, members.labels, held_out)
    assert stacked.mean() > uniform.mean() + 0.05
    assert (stacked > uniform).all()


def test_held_out_clips_reach_neither_fitting_nor_early_stopping(fitted):
    members, folds, log_probs, fit = fitted
    held_by_fold0 = folds.held_out()[0]
    labels = members.labels.copy()
    labels[held_by_fold0] = (labels[held_by_fold0] + 1) % 33  # every held-out answer now wrong
    probs = members.probs.copy()
    probs[:, held_by_fold0] = np.random.default_rng(1).dirichlet(np.ones(33), size=(3, held_by_fold0.sum()))
    refit = fit_stacker(class_major_log_probs(probs), labels, folds, CONFIG)
    torch.testing.assert_close(refit.R[0], fit.R[0], rtol=0, atol=0)
    torch.testing.assert_close(refit.b[0], fit.b[0], rtol=0, atol=0)
    assert refit.best_step[0] == fit.best_step[0]
    assert not torch.equal(refit.R[1:], fit.R[1:])  # the change does reach the folds that train on those clips


@pytest.mark.parametrize("select_on", ["nll", "error"])
def test_batched_fit_matches_the_per_fold_loop_reference(fitted, bench_stacker, select_on):
    members, folds, log_probs, _ = fitted
    config = dataclasses.replace(CONFIG, select_on=select_on)
    fit = fit_stacker(log_probs, members.labels, folds, config)
    reference = bench_stacker.fit_per_fold_loop(members.probs, members.labels, folds, config)
    np.testing.assert_array_equal(reference["best_step"], fit.best_step)
    reference_weights = torch.softmax(torch.as_tensor(reference["R"]), dim=1).numpy()
    np.testing.assert_allclose(reference_weights, fit.weights().numpy(), atol=1e-5)
    np.testing.assert_allclose(reference["b"], fit.b.numpy(), atol=1e-5)


def test_fit_is_deterministic(fitted):
    members, folds, log_probs, fit = fitted
    again = fit_stacker(log_probs, members.labels, folds, CONFIG)
    assert torch.equal(again.R, fit.R) and torch.equal(again.b, fit.b)


def test_bag_is_the_mean_of_the_fold_models(fitted):
    _, _, log_probs, fit = fitted
    torch.testing.assert_close(fit.bagged_probs(log_probs), fit.fold_probs(log_probs).mean(dim=0))
    torch.testing.assert_close(fit.bagged_probs(log_probs).sum(dim=-1), torch.ones(log_probs.shape[2]))
