"""Fold members (ChaLearn fold ensembles): the partition, what each fit learns from, and the CLI flag."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.data.zip_dataset import ClipDataset
from whatnext.finetune.folds import Fold, fold_of, held_out_ids
from whatnext.finetune.training_sets import open_training_set


def test_folds_are_stratified_balanced_and_independent_of_order():
    ids = [f"{i:05d}" for i in range(103)]
    labels = np.array([i % 3 for i in range(103)])  # 35, 34, 34 clips of classes 0, 1, 2
    folds = fold_of(ids, labels, 5)
    for label in range(3):
        sizes = np.bincount(folds[labels == label], minlength=5)
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == (labels == label).sum()
    order = np.random.default_rng(0).permutation(103)
    shuffled = fold_of([ids[i] for i in order], labels[order], 5)
    assert (shuffled == folds[order]).all()


def test_fold_spec_is_checked():
    assert Fold.parse("2/5", "trainval") == Fold(2, 5, "trainval")
    for text in ("5/5", "0/1", "a/b", "3"):
        with pytest.raises(ValueError, match="fold"):
            Fold.parse(text)
    with pytest.raises(ValueError, match="pool"):
        Fold(0, 2, "test")


def test_the_folds_of_a_pool_cover_it_exactly_once(tiny_data_dir):
    train = set(ClipDataset(tiny_data_dir, "train", stacked=False).clip_ids)
    val = set(ClipDataset(tiny_data_dir, "val", stacked=False).clip_ids)
    for pool, expected in (("train", train), ("trainval", train | val)):
        folds = [held_out_ids(tiny_data_dir, Fold(i, 3, pool)) for i in range(3)]
        assert set().union(*folds) == expected and sum(map(len, folds)) == len(expected)
        assert max(map(len, folds)) - min(map(len, folds)) <= 33  # at most one clip a class apart


@pytest.mark.parametrize("pool", ["train", "trainval"])
def test_each_fit_of_a_fold_member_leaves_out_its_fold_and_the_stacked_fit_never_sees_val(tiny_data_dir, pool):
    fold = Fold(1, 3, pool)
    out = held_out_ids(tiny_data_dir, fold)
    train = ClipDataset(tiny_data_dir, "train", stacked=False).clip_ids
    val = ClipDataset(tiny_data_dir, "val", stacked=False).clip_ids
    stacked = open_training_set(tiny_data_dir, "train", 33, fold=fold)
    assert stacked.clip_ids == [c for c in train if c not in out]  # 450 train clips minus the fold's
    twin = open_training_set(tiny_data_dir, "trainval", 33, fold=fold)
    assert twin.clip_ids == [c for c in train + val if c not in out]
    assert set(val) <= set(twin.clip_ids) if pool == "train" else set(val) & out


def test_a_bad_fold_flag_is_a_usage_error(tiny_data_dir, tmp_path):
    from click.testing import CliRunner

    from whatnext.finetune.track_a_scratch import main

    result = CliRunner().invoke(main, ["--data", str(tiny_data_dir), "--arch", "conv2d_tiny", "--head", "attn",
                                       "--fit", "train", "--out", str(tmp_path / "m.pt"), "--metrics",
                                       str(tmp_path / "m.json"), "--fold", "3/3"])
    assert result.exit_code == 2 and "fold 3/3: need 0 <= index < count" in result.output
