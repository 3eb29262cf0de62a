"""Masking strategies: exact counts, per-frame vs tube structure, seeding, visible indices."""

import pytest
import torch

from whatnext.ssl.masking import RandomFrameMasking, TubeMasking, build_masking, visible_indices


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_frame_masks_exactly_the_ratio_in_every_frame():
    mask = RandomFrameMasking(0.75)(3, (4, 16), _gen())
    assert mask.shape == (3, 4, 16) and mask.dtype == torch.bool
    assert (mask.sum(-1) == 12).all()


def test_random_frame_masks_differ_between_frames():
    mask = RandomFrameMasking(0.75)(2, (4, 196), _gen())
    assert not torch.equal(mask[:, 0], mask[:, 1])


def test_tube_mask_is_the_same_at_every_step():
    mask = TubeMasking(0.9)(3, (2, 196), _gen())
    assert torch.equal(mask[:, 0], mask[:, 1])
    assert (mask.sum(-1) == 176).all()  # round(0.9 * 196)
    assert not torch.equal(mask[0], mask[1])


def test_same_seed_same_mask_other_seed_other_mask():
    masking = RandomFrameMasking(0.75)
    assert torch.equal(masking(2, (4, 49), _gen(1)), masking(2, (4, 49), _gen(1)))
    assert not torch.equal(masking(2, (4, 49), _gen(1)), masking(2, (4, 49), _gen(2)))


def test_every_patch_is_masked_at_the_ratio_on_average():
    mask = RandomFrameMasking(0.75)(500, (4, 16), _gen())
    assert torch.allclose(mask.float().mean((0, 1)), torch.full((16,), 0.75), atol=0.03)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5])
def test_ratio_outside_open_unit_interval_raises(ratio):
    with pytest.raises(ValueError, match="mask ratio"):
        RandomFrameMasking(ratio)


def test_ratio_leaving_no_visible_patch_raises():
    with pytest.raises(ValueError, match="no masked or no visible"):
        TubeMasking(0.9)(1, (2, 4), _gen())  # round(3.6) = 4 of 4


def test_unknown_masking_name_lists_known():
    with pytest.raises(ValueError, match=r"unknown masking 'block'.*random_frame, tube"):
        build_masking("block", 0.5)


def test_visible_indices_of_a_hand_made_mask():
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    assert visible_indices(mask).tolist() == [[1, 3], [0, 1]]


def test_visible_indices_need_equal_counts():
    with pytest.raises(ValueError, match="same number of visible"):
        visible_indices(torch.tensor([[True, False], [False, False]]))
