import json

import numpy as np
import pytest

from whatnext.runtime.prob_cache import ProbCacheError, cache_path, read_prob_cache, write_prob_cache


def _probs(n, c=33, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random((n, c)).astype(np.float32)
    return p / p.sum(axis=1, keepdims=True)


def test_roundtrip_keeps_ids_probs_and_provenance(tmp_path):
    path = cache_path(tmp_path, "cascade-g6-attn-r0", "train", "val")
    probs = _probs(5)
    write_prob_cache(path, ["1", "2", "3", "4", "5"], probs, {"member": "cascade-g6-attn-r0"})
    cache = read_prob_cache(path, num_classes=33, expected_ids=["1", "2", "3", "4", "5"])
    assert cache.ids.tolist() == ["1", "2", "3", "4", "5"]
    np.testing.assert_array_equal(cache.probs, probs)
    assert cache.provenance["member"] == "cascade-g6-attn-r0"
    assert cache.provenance["num_clips"] == 5
    assert path == tmp_path / "cascade-g6-attn-r0" / "train-val.npz"


def test_write_refuses_rows_not_summing_to_one_and_names_the_clip(tmp_path):
    probs = _probs(3)
    probs[1] *= 2
    with pytest.raises(ProbCacheError, match="clip '8' sum to 2"):
        write_prob_cache(tmp_path / "m" / "train-val.npz", ["7", "8", "9"], probs, {})
    assert not (tmp_path / "m" / "train-val.npz").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_write_refuses_non_finite(tmp_path, bad):
    probs = _probs(3)
    probs[2, 4] = bad
    with pytest.raises(ProbCacheError, match="non-finite probabilities for clip '9'"):
        write_prob_cache(tmp_path / "x.npz", ["7", "8", "9"], probs, {})


def test_read_detects_ids_in_another_order(tmp_path):
    path = tmp_path / "m" / "train-test.npz"
    write_prob_cache(path, ["1", "2", "3"], _probs(3), {})
    with pytest.raises(ProbCacheError, match="another order"):
        read_prob_cache(path, expected_ids=["2", "1", "3"])
    with pytest.raises(ProbCacheError, match="missing clip '4'"):
        read_prob_cache(path, expected_ids=["1", "2", "4"])


def test_read_names_missing_and_wrong_shape_files(tmp_path):
    with pytest.raises(ProbCacheError, match="missing probability cache"):
        read_prob_cache(tmp_path / "absent.npz")
    path = tmp_path / "m" / "train-val.npz"
    write_prob_cache(path, ["1", "2"], _probs(2, c=10), {})
    with pytest.raises(ProbCacheError, match="expected 33 classes"):
        read_prob_cache(path, num_classes=33)


def test_read_rejects_truncated_file(tmp_path):
    path = tmp_path / "m" / "train-val.npz"
    write_prob_cache(path, ["1", "2"], _probs(2), {})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ProbCacheError, match="unreadable"):
        read_prob_cache(path)


def test_provenance_is_json_beside_the_cache(tmp_path):
    path = tmp_path / "m" / "trainval-test.npz"
    write_prob_cache(path, ["1"], _probs(1), {"tta": "five_crop"})
    assert json.loads(path.with_suffix(".json").read_text())["tta"] == "five_crop"
