"""Baseline aggregators and out-of-fold assembly, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.ensemble.aggregators import best_member
from whatnext.ensemble.nested_cv import make_nested_folds
from whatnext.ensemble.scoring import out_of_fold


def test_best_member_is_chosen_without_the_held_out_clips():
    labels = np.arange(30) % 3
    right = np.eye(3, dtype=np.float32)[labels] * 0.9 + 0.1 / 3
    wrong = np.eye(3, dtype=np.float32)[(labels + 1) % 3] * 0.9 + 0.1 / 3
    folds = make_nested_folds(labels, 3, seed=0)
    held_by_fold0 = folds.held_out()[0]
    # member 1 is right only on fold 0's held-out clips: fold 0 must still pick member 0
    member1 = np.where(held_by_fold0[:, None], right, wrong)
    probs = np.stack([right, member1])
    aggregated = best_member(probs, probs[:, :5], labels, folds)
    np.testing.assert_array_equal(aggregated.fold_probs[0], right)


def test_out_of_fold_takes_each_clip_from_the_fold_that_held_it_out():
    folds = make_nested_folds(np.zeros(9, dtype=np.int64), 3, seed=0)
    fold_probs = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 9, 2), dtype=np.float32)  # fold f says f
    np.testing.assert_array_equal(out_of_fold(fold_probs, folds.held_out())[:, 0], folds.chunk)


def test_out_of_fold_refuses_masks_that_are_not_a_partition():
    with pytest.raises(ValueError, match="exactly one fold"):
        out_of_fold(np.zeros((2, 3, 2)), np.array([[True, True, False], [True, False, False]]))
