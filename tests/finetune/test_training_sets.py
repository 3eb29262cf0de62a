"""Training-set composition: train vs train+val twin, and the pseudo-label union (sizes and labels)."""

import numpy as np
import pytest
import torch

from whatnext.finetune.training_sets import LabelledClips, carve_stop_split, compose_training_set


class FakeSplit:
    """Stand-in for ClipDataset: frames hold the clip id so tests can see which clip was read."""

    def __init__(self, ids, labels):
        self.clip_ids = [str(i) for i in ids]
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.clip_ids)

    def __getitem__(self, i):
        return torch.full((4, 3, 2, 2), int(self.clip_ids[i]), dtype=torch.uint8), int(self.labels[i]), self.clip_ids[i]


@pytest.fixture
def splits():
    return {
        "train": FakeSplit([1, 2, 3], [0, 18, 5]),
        "val": FakeSplit([4, 5], [19, 7]),
        "test": FakeSplit([6, 7, 8, 9], [-1, -1, -1, -1]),
    }


def test_fit_train_holds_only_training_clips(splits):
    ds = compose_training_set(splits, "train")
    assert ds.clip_ids == ["1", "2", "3"] and ds.labels.tolist() == [0, 18, 5]


def test_fit_trainval_twin_holds_train_then_val(splits):
    ds = compose_training_set(splits, "trainval")
    assert len(ds) == 5
    assert ds.clip_ids == ["1", "2", "3", "4", "5"]
    assert ds.labels.tolist() == [0, 18, 5, 19, 7]
    assert ds.sources == ["train"] * 3 + ["val"] * 2


def test_pseudo_union_adds_every_test_clip_with_its_pseudo_label(splits):
    ds = compose_training_set(splits, "train", pseudo_labels=np.array([3, 18, 0, 32]))
    assert len(ds) == 3 + 4
    assert ds.labels.tolist() == [0, 18, 5, 3, 18, 0, 32]
    assert ds.sources[3:] == ["pseudo"] * 4


def test_pseudo_union_with_trainval_holds_all_three_splits(splits):
    ds = compose_training_set(splits, "trainval", pseudo_labels=np.array([3, 18, 0, 32]))
    assert len(ds) == 9 and ds.clip_ids[-4:] == ["6", "7", "8", "9"]


def test_items_carry_the_attached_label_not_the_sources(splits):
    ds = compose_training_set(splits, "train", pseudo_labels=np.array([3, 18, 0, 32]))
    frames, label, clip_id = ds[4]
    assert (clip_id, label, int(frames[0, 0, 0, 0])) == ("7", 18, 7)


def test_the_training_steps_flip_swaps_a_pseudo_label_like_a_real_one(splits):
    from whatnext.data.clip_batches import collate_clips
    from whatnext.data.clip_normalise import ClipNormaliser
    from whatnext.data.clip_transforms import ClipAugmenter

    ds = compose_training_set(splits, "train", pseudo_labels=np.array([3, 18, 0, 32]))
    frames, labels, clip_ids, sizes = collate_clips([ds[1], ds[4]])  # real 18 (clip 2), pseudo 18 (clip 7)
    _, flipped = ClipAugmenter(2, ClipNormaliser([0.5] * 3, [0.5] * 3), flip_p=1.0)(frames, labels, sizes)
    assert clip_ids == ["2", "7"] and labels.tolist() == [18, 18] and flipped.tolist() == [19, 19]


def test_unknown_fit_is_rejected(splits):
    with pytest.raises(ValueError, match="fit must be one of"):
        compose_training_set(splits, "val")


def test_label_count_must_match_clip_count(splits):
    with pytest.raises(ValueError, match="pseudo: 2 labels for 4 clips"):
        compose_training_set(splits, "train", pseudo_labels=np.array([1, 2]))


def test_unlabelled_clip_is_rejected(splits):
    with pytest.raises(ValueError, match="test: clip '6' has no label"):
        LabelledClips([("test", splits["test"], splits["test"].labels)])


def test_stop_split_is_stratified_by_label_and_keeps_a_clip_of_every_class():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 15 + [3] * 4 + [4] * 1)
    ids = [f"c{i}" for i in range(len(labels))]
    stop = carve_stop_split(ids, labels, np.ones(len(labels), bool), 0.1)
    assert len(stop) == 10  # round(0.1 x 100)
    taken = np.bincount(labels[stop], minlength=5)
    assert taken[0] == 5 and taken[1] == 3 and taken[2] in (1, 2) and taken[4] == 0  # never a class's only clip
    assert (taken < np.bincount(labels)).all()


def test_stop_split_depends_on_the_clips_not_their_order():
    labels = np.arange(200) % 7
    ids = [f"video_{i}" for i in range(200)]
    stop = {ids[i] for i in carve_stop_split(ids, labels, np.ones(200, bool), 0.1)}
    order = np.random.default_rng(0).permutation(200)
    shuffled = {ids[order[i]] for i in carve_stop_split([ids[j] for j in order], labels[order], np.ones(200, bool), 0.1)}
    assert stop == shuffled and len(stop) == 20


def test_stop_split_never_takes_an_ineligible_clip():
    labels = np.arange(100) % 4
    eligible = np.arange(100) < 60  # the rest: pseudo-labelled test clips
    stop = carve_stop_split([str(i) for i in range(100)], labels, eligible, 0.1)
    assert len(stop) == 6 and (stop < 60).all()
