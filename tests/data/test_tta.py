import pytest
import torch

from whatnext.data.class_table import load_class_table
from whatnext.data.tta import TTAViews, merge_view_probs


def grid_clip(size: int = 16) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.stack([x * 10, y * 10, x * 0]).to(torch.uint8).expand(4, -1, -1, -1).clone()


def test_five_crop_gives_corners_then_centre():
    views = TTAViews(8, five_crop=True, crop_fraction=0.5)(grid_clip())  # resize 16 -> 16
    assert views.shape == (5, 4, 3, 8, 8) and views.dtype == torch.uint8
    top_left_x = (views[:, 0, 0, 0, 0] / 10).tolist()
    top_left_y = (views[:, 0, 1, 0, 0] / 10).tolist()
    assert top_left_x == [0, 8, 0, 8, 4] and top_left_y == [0, 0, 8, 8, 4]


def test_flip_appends_mirrored_views_and_marks_them():
    tta = TTAViews(8, five_crop=True, flip=True, crop_fraction=0.5)
    views = tta(grid_clip())
    assert views.shape == (10, 4, 3, 8, 8)
    assert tta.flipped.tolist() == [False] * 5 + [True] * 5
    assert torch.equal(views[5:], views[:5].flip(-1))


def test_single_view_without_five_crop():
    tta = TTAViews(8, five_crop=False, flip=True)
    assert tta(grid_clip()).shape == (2, 4, 3, 8, 8) and tta.flipped.tolist() == [False, True]


def test_merge_swaps_mirror_columns_of_flipped_views_before_averaging():
    perm = load_class_table().mirror_permutation()
    probs = torch.zeros(1, 2, 33)
    probs[0, 0, 18] = 1.0  # plain view: "left to right"
    probs[0, 1, 19] = 1.0  # flipped view saw "right to left", i.e. the clip is "left to right"
    merged = merge_view_probs(probs, torch.tensor([False, True]), perm)
    assert merged[0, 18] == 1.0 and merged.sum() == 1.0


def test_merge_leaves_other_columns_of_flipped_views_alone():
    probs = torch.softmax(torch.randn(3, 2, 33, generator=torch.Generator().manual_seed(0)), -1)
    merged = merge_view_probs(probs, torch.tensor([True, True]))
    assert torch.allclose(merged[:, :18], probs.mean(1)[:, :18]) and torch.allclose(merged[:, 18], probs.mean(1)[:, 19])


def test_merge_rejects_a_view_count_mismatch():
    with pytest.raises(ValueError, match=r"probs must be \[N, V=3, K\]"):
        merge_view_probs(torch.zeros(2, 2, 33), torch.tensor([False, False, True]))
