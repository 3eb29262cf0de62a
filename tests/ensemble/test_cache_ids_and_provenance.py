"""Caches written by other code: integer or bytes clip ids, and a malformed provenance sidecar.

The ids are normalised in one place (``read_prob_cache``), so the submission, the pseudo-labels and
the stacker's member loading read such a cache alike; a malformed sidecar is a ``ProbCacheError``
naming it, which the stacker turns into a skipped member.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from whatnext.ensemble.members import CacheRequest, load_members
from whatnext.ensemble.pseudo_label import main as pseudo_label_main
from whatnext.inference.submission import main as submission_main
from whatnext.runtime.prob_cache import ProbCacheError, cache_path, read_prob_cache


def _write_raw(path, ids, probs):
    """A cache as another producer might write it: ids in whatever dtype it had, no sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, ids=ids, probs=np.asarray(probs, dtype=np.float32))


def _test_ids(pool) -> np.ndarray:
    return pd.read_csv(pool["data"] / "test.csv", dtype=str)["video_id"].to_numpy(dtype=str)


@pytest.mark.parametrize("as_dtype", [np.int64, np.bytes_], ids=["int64", "bytes"])
def test_submission_and_pseudo_labels_agree_on_a_cache_with_non_string_ids(specialist_pool, tmp_path, as_dtype):
    test_ids = _test_ids(specialist_pool)
    probs = np.random.default_rng(0).dirichlet(np.full(33, 0.3), size=len(test_ids)).astype(np.float32)
    _write_raw(tmp_path / "p.npz", test_ids.astype(as_dtype), probs)
    args = ["--probs", str(tmp_path / "p.npz"), "--data", str(specialist_pool["data"])]
    submitted = CliRunner().invoke(submission_main, [*args, "--out", str(tmp_path / "s.csv")])
    pseudo = CliRunner().invoke(pseudo_label_main, [*args, "--out", str(tmp_path / "pl.csv")])
    assert submitted.exit_code == 0, submitted.output
    assert pseudo.exit_code == 0, pseudo.output
    submission = pd.read_csv(tmp_path / "s.csv", dtype=str)
    labels = pd.read_csv(tmp_path / "pl.csv", dtype=str)
    assert list(submission["video_name"]) == [f"video_{c}" for c in test_ids]
    assert list(labels["video_id"]) == list(test_ids)
    np.testing.assert_array_equal(submission["predicted_class"].astype(int), probs.argmax(axis=1))
    np.testing.assert_array_equal(labels["label"].astype(int), probs.argmax(axis=1))


@pytest.mark.parametrize("as_dtype", [np.int64, np.bytes_], ids=["int64", "bytes"])
def test_stacker_members_load_a_cache_with_non_string_ids_in_another_order(specialist_pool, as_dtype):
    test_ids = _test_ids(specialist_pool)
    path = cache_path(specialist_pool["cache"], "m1", "train", "test")
    original = read_prob_cache(path)
    _write_raw(path, original.ids[::-1].astype(as_dtype), original.probs[::-1])
    stack = load_members(specialist_pool["cache"], ["m0", "m1"], [CacheRequest("train", "test", test_ids)], 33)
    assert stack.members == ["m0", "m1"] and stack.skipped == []
    np.testing.assert_array_equal(stack.probs["train-test"][1], original.probs)


def test_float_ids_are_refused_naming_the_cache(tmp_path):
    _write_raw(tmp_path / "p.npz", np.array([1.0, 2.0]), np.full((2, 33), 1 / 33))
    with pytest.raises(ProbCacheError, match=r"p\.npz: clip ids must be strings or integers, got dtype float64") as err:
        read_prob_cache(tmp_path / "p.npz")
    assert err.value.reason == "wrong dtype"


@pytest.mark.parametrize("sidecar", ['{"member": "m1", ', "[1, 2]", "\xff\xfe"], ids=["truncated", "not-an-object", "not-utf8"])
def test_malformed_sidecar_is_a_cache_error_naming_the_sidecar(specialist_pool, sidecar):
    path = cache_path(specialist_pool["cache"], "m1", "train", "val")
    path.with_suffix(".json").write_bytes(sidecar.encode("latin-1"))
    with pytest.raises(ProbCacheError, match=r"m1/train-val\.json: .*provenance sidecar") as err:
        read_prob_cache(path)
    assert err.value.reason == "unreadable provenance"


def test_stacker_skips_the_member_whose_sidecar_is_malformed(specialist_pool):
    path = cache_path(specialist_pool["cache"], "m1", "train", "val")
    path.with_suffix(".json").write_text('{"member": "m1", ')
    val_ids = pd.read_csv(specialist_pool["data"] / "val.csv", dtype=str)["video_id"].to_numpy(dtype=str)
    stack = load_members(specialist_pool["cache"], specialist_pool["members"], [CacheRequest("train", "val", val_ids)], 33)
    assert stack.members == ["m0", "m2"]
    assert [(s.member, s.reason) for s in stack.skipped] == [("m1", "unreadable provenance")]
    assert "m1/train-val.json" in stack.skipped[0].detail


def test_submission_with_a_malformed_sidecar_exits_2_naming_it(specialist_pool, tmp_path):
    path = cache_path(specialist_pool["cache"], "m0", "train", "test")
    path.with_suffix(".json").write_text("not json")
    result = CliRunner().invoke(submission_main, ["--probs", str(path), "--data", str(specialist_pool["data"]), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 2, result.output
    assert "m0/train-test.json: unreadable provenance sidecar" in result.output
    assert not (tmp_path / "s.csv").exists()
