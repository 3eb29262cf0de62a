"""Pair-direction auxiliary head and its pair sampler."""

import pytest
import torch

from whatnext.models import PairDirectionHead, sample_frame_pairs


def test_sampled_pairs_are_distinct_steps_labelled_by_their_order():
    b, steps = 64, 4
    features = torch.arange(steps, dtype=torch.float32).view(1, steps, 1).expand(b, steps, 3)  # value = step index
    first, second, target = sample_frame_pairs(features, torch.Generator().manual_seed(0))
    assert (first[:, 0] != second[:, 0]).all()
    assert torch.equal(target, (first[:, 0] < second[:, 0]).float())
    assert 0 < target.mean() < 1


def test_sampling_is_seeded():
    features = torch.randn(8, 4, 3)
    one = sample_frame_pairs(features, torch.Generator().manual_seed(5))
    two = sample_frame_pairs(features, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_single_step_features_raise():
    with pytest.raises(ValueError, match="at least 2 time steps"):
        sample_frame_pairs(torch.randn(2, 1, 3))


def test_head_gives_one_logit_per_pair_and_learns_order():
    torch.manual_seed(0)
    head = PairDirectionHead(dim=4)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    step_codes = torch.randn(4, 4)  # one fixed feature vector per step
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        first, second, target = sample_frame_pairs(step_codes.expand(32, 4, 4), generator)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(first, second), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    first, second, target = sample_frame_pairs(step_codes.expand(256, 4, 4), generator)
    logits = head(first, second)
    assert logits.shape == (256,)
    assert ((logits > 0).float() == target).float().mean() > 0.95
