"""Auxiliary losses on hand-made inputs."""

import math

import pytest
import torch

from whatnext.finetune.losses import pair_direction_loss, symmetric_kl
from whatnext.models import sample_frame_pairs


def test_symmetric_kl_of_identical_distributions_is_zero():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    assert symmetric_kl(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_symmetric_kl_ignores_a_constant_shift_of_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert symmetric_kl(logits, logits + 7.0).item() == pytest.approx(0.0, abs=1e-6)


def test_symmetric_kl_matches_hand_computed_value():
    # KL([.75,.25] || [.25,.75]) = .75 ln 3 - .25 ln 3 = 0.5 ln 3, and the reverse is the same.
    p, q = torch.tensor([0.75, 0.25]), torch.tensor([0.25, 0.75])
    got = symmetric_kl(p.log().unsqueeze(0), q.log().unsqueeze(0))
    assert got.item() == pytest.approx(0.5 * math.log(3.0), rel=1e-5)


def test_symmetric_kl_is_symmetric():
    a, b = torch.tensor([[1.0, 0.0, -2.0]]), torch.tensor([[0.0, 2.0, 1.0]])
    assert symmetric_kl(a, b).item() == pytest.approx(symmetric_kl(b, a).item(), rel=1e-6)


def test_symmetric_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        symmetric_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def step_index_features(clips: int, steps: int = 4) -> torch.Tensor:
    """[B, T', 1] whose value is the step index, so a feature says which frame it came from."""
    return torch.arange(steps, dtype=torch.float32).repeat(clips, 1).unsqueeze(-1)


def test_pair_direction_target_is_forward_exactly_when_first_precedes_second():
    first, second, target = sample_frame_pairs(step_index_features(200), torch.Generator().manual_seed(0))
    assert torch.equal(target.bool(), first[:, 0] < second[:, 0])
    assert 0 < target.sum() < 200  # both orders occur


def test_pair_direction_target_flips_when_the_pair_is_reversed():
    """An order-aware head scores ~0 loss; the same head fed the pairs reversed scores a large loss."""
    features = step_index_features(64)

    def order_aware(first, second):
        return 20.0 * (second - first)[:, 0]

    def reversed_pairs(first, second):
        return order_aware(second, first)

    assert pair_direction_loss(order_aware, features, torch.Generator().manual_seed(1)).item() < 1e-6
    assert pair_direction_loss(reversed_pairs, features, torch.Generator().manual_seed(1)).item() > 15.0


def test_pair_direction_loss_of_an_uninformed_head_is_log_two():
    def undecided(first, second):
        return torch.zeros(first.shape[0])

    loss = pair_direction_loss(undecided, step_index_features(8), torch.Generator().manual_seed(2))
    assert loss.item() == pytest.approx(math.log(2.0), rel=1e-6)
