"""Temporal heads see the order of time steps; the relational head needs two steps."""

import pytest
import torch

from whatnext.models import list_heads
from whatnext.models.registry import HEADS


@pytest.mark.parametrize("name", list_heads())
def test_head_output_depends_on_step_order(name):
    head = HEADS.get(name)(dim=16, num_steps=4, num_classes=33).eval()
    tokens = torch.randn(2, 4, 5, 16)
    reversed_time = tokens.flip(1)
    assert not torch.allclose(head(tokens), head(reversed_time))


@pytest.mark.parametrize("name", list_heads())
def test_head_is_invariant_to_token_order_within_a_step(name):
    """Shuffling the N tokens of every step leaves every head's output unchanged (they pool over tokens)."""
    head = HEADS.get(name)(dim=16, num_steps=4, num_classes=33).eval()
    tokens = torch.randn(2, 4, 5, 16)
    shuffled = tokens[:, :, torch.tensor([4, 2, 0, 1, 3])]
    torch.testing.assert_close(head(tokens), head(shuffled), rtol=1e-5, atol=1e-5)


def test_relational_head_needs_two_steps():
    with pytest.raises(ValueError, match="at least 2 time steps"):
        HEADS.get("relational")(dim=16, num_steps=1, num_classes=33)


def test_head_dropout_override_is_accepted():
    head = HEADS.get("attn")(dim=16, num_steps=2, num_classes=5, dropout=0.5)
    assert head.dropout.p == 0.5 and head.fc.out_features == 5
