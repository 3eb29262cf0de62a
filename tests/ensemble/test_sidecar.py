"""The sidecar applies train-only weights to train+val twins and never reads the twins' val caches."""

from __future__ import annotations

import numpy as np
import torch
from click.testing import CliRunner

import whatnext.ensemble.members as members_module
from whatnext.ensemble import sidecar, stacker
from whatnext.ensemble.stacker_model import class_major_log_probs, stacker_logits
from whatnext.runtime.prob_cache import cache_path, read_prob_cache

FAST = ["--folds", "4", "--max-steps", "40", "--patience", "10"]


def invoke(command, pool, name):
    root = pool["root"]
    args = ["--cache-dir", pool["cache"], "--members", pool["member_list"], "--data", pool["data"], "--out", root / f"{name}.csv",
            "--weights", root / f"{name}.npz", "--test-probs", root / name / "test.npz", *FAST]
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return np.load(root / f"{name}.npz"), read_prob_cache(root / name / "test.npz")


def test_twin_weights_are_the_train_only_members_weights(specialist_pool):
    side_weights, _ = invoke(sidecar.main, specialist_pool, "side")
    stack_weights, _ = invoke(stacker.main, specialist_pool, "stack")
    np.testing.assert_array_equal(side_weights["R"], stack_weights["R"])
    np.testing.assert_array_equal(side_weights["bias"], stack_weights["bias"])


def test_sidecar_predicts_from_the_twins_test_caches(specialist_pool):
    weights, test = invoke(sidecar.main, specialist_pool, "side")
    twin_probs = np.stack([read_prob_cache(cache_path(specialist_pool["cache"], m, "trainval", "test")).probs for m in specialist_pool["members"]])
    params = {"R": torch.as_tensor(weights["R"]), "b": torch.as_tensor(weights["bias"])}
    expected = torch.softmax(stacker_logits(params, class_major_log_probs(twin_probs)), dim=-1).mean(dim=0)
    np.testing.assert_allclose(test.probs, expected.numpy(), atol=1e-6)
    assert test.provenance["fit"] == "trainval"


def test_twins_validation_caches_are_never_read(specialist_pool, monkeypatch):
    read_paths = []
    original = members_module.read_prob_cache

    def spy(path, *args, **kwargs):
        read_paths.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(members_module, "read_prob_cache", spy)
    invoke(sidecar.main, specialist_pool, "side")
    assert read_paths and not any(p.endswith("trainval-val.npz") for p in read_paths)


def test_twins_validation_caches_do_not_change_the_sidecar(specialist_pool):
    _, before = invoke(sidecar.main, specialist_pool, "before")
    for member in specialist_pool["members"]:  # in-sample twin val caches (one-hot labels) gone entirely
        cache_path(specialist_pool["cache"], member, "trainval", "val").unlink()
    _, after = invoke(sidecar.main, specialist_pool, "after")
    np.testing.assert_array_equal(before.probs, after.probs)


def test_member_without_a_twin_is_skipped_and_listed(specialist_pool):
    import json

    cache_path(specialist_pool["cache"], "m1", "trainval", "test").unlink()
    invoke(sidecar.main, specialist_pool, "side")
    report = json.loads((specialist_pool["root"] / "side.report.json").read_text())
    assert report["members_used"] == ["m0", "m2"]
    assert report["members_skipped"][0]["member"] == "m1" and "trainval-test.npz" in report["members_skipped"][0]["detail"]
