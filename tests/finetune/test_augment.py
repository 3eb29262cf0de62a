"""Finetuning's augmenter: one or two clip-coherent views, with the strengths of ``Augmentation``."""

import torch

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.finetune.augment import STANDARD, Augmentation, train_augmenter

LEFT, RIGHT = load_class_table().mirror_pairs[0]
TO_UNIT = ClipNormaliser([0.0] * 3, [1.0] * 3)


def left_bright_batch(n: int):
    frames = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    frames[..., :16] = 255
    return collate_clips([(frames, LEFT, str(i)) for i in range(n)])


def test_one_view_is_b_t_c_s_s_and_two_views_b_2_t_c_s_s():
    frames, labels, _, sizes = collate_clips([(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), 5, "a")] * 3)
    torch.manual_seed(0)
    one, _ = train_augmenter(16, STANDARD, TO_UNIT)(frames, labels, sizes)
    two, kept = train_augmenter(16, STANDARD, TO_UNIT, two_views=True)(frames, labels, sizes)
    assert one.shape == (3, 4, 3, 16, 16) and two.shape == (3, 2, 4, 3, 16, 16) and kept.tolist() == [5, 5, 5]
    assert not torch.equal(two[:, 0], two[:, 1])


def test_both_views_share_one_flip_and_the_label_follows_it():
    """Full-frame crops, no jitter: the left-bright clip stays left-bright in both views (label 18) or
    turns right-bright in both (label 19); the two views never disagree."""
    torch.manual_seed(0)
    frames, labels, _, sizes = left_bright_batch(12)
    views, labels = train_augmenter(16, Augmentation(crop_min=1.0, jitter=0.0), TO_UNIT, two_views=True)(frames, labels, sizes)
    left_brighter = views[..., :8].mean((2, 3, 4, 5)) > views[..., 8:].mean((2, 3, 4, 5))  # [B, 2]
    assert torch.equal(left_brighter[:, 0], left_brighter[:, 1])
    assert labels.tolist() == [LEFT if left else RIGHT for left in left_brighter[:, 0].tolist()]
    assert set(labels.tolist()) == {LEFT, RIGHT}


def test_jitter_of_the_augmentation_reaches_the_pixels():
    frames, labels, _, sizes = left_bright_batch(4)
    torch.manual_seed(0)
    plain, _ = train_augmenter(16, Augmentation(jitter=0.0), TO_UNIT)(frames, labels, sizes)
    torch.manual_seed(0)
    jittered, _ = train_augmenter(16, Augmentation(jitter=0.5), TO_UNIT)(frames, labels, sizes)
    assert not torch.allclose(plain, jittered, atol=1e-3)
