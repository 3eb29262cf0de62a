"""Member lists and loading members' caches: skips with reasons, strictness, alignment by id."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.ensemble.members import CacheRequest, MemberError, load_members, read_member_list
from whatnext.runtime.prob_cache import cache_path


def _val_request(pool):
    import pandas as pd

    ids = pd.read_csv(pool["data"] / "val.csv", dtype=str)["video_id"].to_numpy(dtype=str)
    return CacheRequest("train", "val", ids)


def _overwrite(path, ids, probs):
    """Write a cache without the writer's validation (the way a broken producer might)."""
    with open(path, "wb") as handle:
        np.savez(handle, ids=np.asarray(ids), probs=np.asarray(probs, dtype=np.float32))


def test_member_list_ignores_comments_and_blank_lines(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("# pool\n\ncascade-g6-attn-r0  # best\n  mae2d-m4a\n")
    assert read_member_list(path) == ["cascade-g6-attn-r0", "mae2d-m4a"]


def test_member_list_that_is_empty_is_an_error(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(MemberError, match="member list is empty"):
        read_member_list(path)


def test_member_list_names_the_line_of_a_bad_id(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("good\nbad id\n")
    with pytest.raises(MemberError, match=r"m.txt:2: 'bad id' is not a member id"):
        read_member_list(path)


def test_member_listed_twice_is_an_error(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("a\nb\na\n")
    with pytest.raises(MemberError, match="'a' is listed twice"):
        read_member_list(path)


def test_unknown_member_is_skipped_and_named(specialist_pool):
    stack = load_members(specialist_pool["cache"], ["m0", "ghost", "m1"], [_val_request(specialist_pool)], 33)
    assert stack.members == ["m0", "m1"]
    assert [(s.member, s.reason) for s in stack.skipped] == [("ghost", "unknown member")]
    assert "probs/ghost: no cache folder" in stack.skipped[0].detail


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda p: p.__setitem__((3, 5), np.nan), "non-finite"),
        (lambda p: p.__setitem__((3, 5), np.inf), "non-finite"),
        (lambda p: p.__setitem__((7, slice(None)), p[7] * 2), "not normalised"),
    ],
    ids=["nan", "inf", "rows-not-summing-to-1"],
)
def test_member_with_bad_probabilities_is_skipped_with_the_reason(specialist_pool, corrupt, reason):
    request = _val_request(specialist_pool)
    path = cache_path(specialist_pool["cache"], "m1", "train", "val")
    with np.load(path) as data:
        probs = data["probs"].copy()
    corrupt(probs)
    _overwrite(path, request.ids, probs)
    stack = load_members(specialist_pool["cache"], specialist_pool["members"], [request], 33)
    assert stack.members == ["m0", "m2"]
    assert [(s.member, s.reason) for s in stack.skipped] == [("m1", reason)]


def test_member_with_wrong_class_count_is_skipped_as_wrong_shape(specialist_pool):
    request = _val_request(specialist_pool)
    _overwrite(cache_path(specialist_pool["cache"], "m2", "train", "val"), request.ids, np.full((len(request.ids), 32), 1 / 32))
    stack = load_members(specialist_pool["cache"], specialist_pool["members"], [request], 33)
    assert [(s.member, s.reason) for s in stack.skipped] == [("m2", "wrong shape")]


def test_member_missing_a_clip_is_skipped_as_id_mismatch(specialist_pool):
    request = _val_request(specialist_pool)
    path = cache_path(specialist_pool["cache"], "m0", "train", "val")
    with np.load(path) as data:
        _overwrite(path, data["ids"][1:], data["probs"][1:])
    stack = load_members(specialist_pool["cache"], specialist_pool["members"], [request], 33)
    assert [(s.member, s.reason) for s in stack.skipped] == [("m0", "id mismatch")]
    assert f"missing clip {str(request.ids[0])!r}" in stack.skipped[0].detail


def test_cache_in_another_order_is_aligned_by_clip_id(specialist_pool):
    request = _val_request(specialist_pool)
    path = cache_path(specialist_pool["cache"], "m0", "train", "val")
    with np.load(path) as data:
        ids, probs = data["ids"], data["probs"]
    order = np.random.default_rng(0).permutation(len(ids))
    _overwrite(path, ids[order], probs[order])
    stack = load_members(specialist_pool["cache"], ["m0"], [request], 33)
    np.testing.assert_array_equal(stack.probs["train-val"][0], probs)
    assert stack.reordered == [f"m0: {path}"]


def test_strict_turns_a_skip_into_an_error_naming_the_member(specialist_pool):
    with pytest.raises(MemberError, match="member 'ghost' is unusable \\(unknown member\\)"):
        load_members(specialist_pool["cache"], ["m0", "ghost"], [_val_request(specialist_pool)], 33, strict=True)


def test_no_usable_member_is_an_error(specialist_pool):
    with pytest.raises(MemberError, match="no usable member among 2"):
        load_members(specialist_pool["cache"], ["ghost", "phantom"], [_val_request(specialist_pool)], 33)


def test_empty_member_set_is_an_error(specialist_pool):
    with pytest.raises(MemberError, match="member list is empty"):
        load_members(specialist_pool["cache"], [], [_val_request(specialist_pool)], 33)


def test_member_is_skipped_whole_when_any_requested_cache_is_bad(specialist_pool):
    import pandas as pd

    test_ids = pd.read_csv(specialist_pool["data"] / "test.csv", dtype=str)["video_id"].to_numpy(dtype=str)
    cache_path(specialist_pool["cache"], "m1", "train", "test").unlink()
    stack = load_members(specialist_pool["cache"], specialist_pool["members"],
                         [_val_request(specialist_pool), CacheRequest("train", "test", test_ids)], 33)
    assert stack.members == ["m0", "m2"]
    assert stack.probs["train-val"].shape[0] == stack.probs["train-test"].shape[0] == 2


def test_member_with_a_folder_but_no_cache_is_skipped_as_missing_cache(specialist_pool):
    cache_path(specialist_pool["cache"], "m2", "train", "val").unlink()
    stack = load_members(specialist_pool["cache"], specialist_pool["members"], [_val_request(specialist_pool)], 33)
    assert [(s.member, s.reason) for s in stack.skipped] == [("m2", "missing cache")]


def test_missing_cache_folder_is_an_error(tmp_path, specialist_pool):
    with pytest.raises(MemberError, match="probability cache folder not found"):
        load_members(tmp_path / "nowhere", ["m0"], [_val_request(specialist_pool)], 33)
