"""whatnext.runtime.micro_batches: one step's batch cut into micro-batches for gradient accumulation."""

from __future__ import annotations

import pytest
import torch

from whatnext.runtime.micro_batches import batch_length, micro_batches


def collated(n):
    """A batch shaped like collate_clips makes it: frames, labels, clip ids, frame sizes."""
    return (torch.arange(n * 2).reshape(n, 2), torch.arange(n), [f"c{i}" for i in range(n)], [(4, 4)] * n)


def test_a_batch_of_8_at_3_is_3_3_2_in_order_with_every_field_cut_alike():
    parts = micro_batches(collated(8), 3)
    assert [n for _, n in parts] == [3, 3, 2]
    assert [p[1].tolist() for p, _ in parts] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [p[2] for p, _ in parts] == [["c0", "c1", "c2"], ["c3", "c4", "c5"], ["c6", "c7"]]
    assert all(isinstance(p, tuple) and len(p[3]) == n for p, n in parts)


def test_a_micro_batch_as_large_as_the_batch_leaves_it_uncut():
    batch = collated(5)
    assert micro_batches(batch, 5)[0][0] is batch and micro_batches(batch, 64) == [(batch, 5)]


def test_none_fields_dicts_and_bare_tensors_split_too():
    parts = micro_batches((torch.zeros(4, 3), None), 2)
    assert [(p[0].shape[0], p[1]) for p, _ in parts] == [(2, None), (2, None)]
    parts = micro_batches({"x": torch.ones(3, 1), "ids": ["a", "b", "c"]}, 2)
    assert [p["ids"] for p, _ in parts] == [["a", "b"], ["c"]]
    assert [p.shape[0] for p, _ in micro_batches(torch.zeros(5, 2), 4)] == [4, 1]
    assert batch_length({"x": torch.ones(3, 1)}) == 3


def test_a_field_that_is_not_one_value_per_clip_is_named():
    with pytest.raises(ValueError, match=r"batch field 1 \(list of 2 items\).*4-clip batch"):
        micro_batches((torch.zeros(4), ["a", "b"]), 2)
    with pytest.raises(ValueError, match=">= 1"):
        micro_batches(collated(4), 0)
