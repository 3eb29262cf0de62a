"""Two clip-coherent views for the consistency loss: different crops, one shared label-aware flip."""

import torch

from whatnext.data.class_table import load_class_table
from whatnext.finetune.augment import STANDARD, Augmentation, train_transform

LEFT, RIGHT = load_class_table().mirror_pairs[0]


def left_bright_clip() -> torch.Tensor:
    frames = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    frames[..., :16] = 255
    return frames


def test_two_views_have_shape_2_t_c_s_s_and_differ():
    torch.manual_seed(0)
    views, label = train_transform(16, STANDARD, two_views=True)(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), 5)
    assert views.shape == (2, 4, 3, 16, 16) and views.dtype == torch.uint8 and label == 5
    assert not torch.equal(views[0], views[1])


def test_both_views_share_one_flip_and_the_label_follows_it():
    """Full-frame crops: the left-bright clip stays left-bright in both views (label 18) or
    turns right-bright in both (label 19); the two views never disagree."""
    transform = train_transform(16, Augmentation(crop_min=1.0), two_views=True)
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        views, label = transform(left_bright_clip(), LEFT)
        views = views.float()
        left_brighter = (views[..., :8].mean((1, 2, 3, 4)) > views[..., 8:].mean((1, 2, 3, 4))).tolist()
        assert left_brighter[0] == left_brighter[1]
        assert label == (LEFT if left_brighter[0] else RIGHT)
        seen.add(label)
    assert seen == {LEFT, RIGHT}
