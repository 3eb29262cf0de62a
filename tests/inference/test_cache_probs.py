"""cache_probs CLI: the cache and its provenance, TTA variants, bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from whatnext.inference import cache_probs
from whatnext.models import build_encoder, build_model
from whatnext.runtime.checkpoint import save_checkpoint
from whatnext.runtime.prob_cache import read_prob_cache

CONFIG = {"encoder": "conv3d_tiny", "head": "attn", "num_classes": 33, "img_size": 16, "num_frames": 4}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from whatnext.data.norm_stats import compute_norm_stats
    from whatnext.data.synth import generate
    from whatnext.runtime.atomic import write_json

    out = tmp_path_factory.mktemp("cache_data")
    generate(out, scale=0.002, size=16, seed=1, progress=False)
    write_json(out / "norm_stats.json", compute_norm_stats(out))
    return out


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "member.pt"
    save_checkpoint(path, kind="classifier", model_config=CONFIG, state_dict=build_model(CONFIG).state_dict())
    return path


def invoke(data, ckpt, out, *extra, split="val"):
    args = ["--data", data, "--ckpt", ckpt, "--split", split, "--member", "scratch-conv3d", "--fit", "train",
            "--out", out, "--threads", "1", *extra]
    return CliRunner().invoke(cache_probs.main, [str(a) for a in args])


def test_val_cache_holds_every_clip_in_csv_order_with_normalised_rows(data_dir, classifier_ckpt, tmp_path):
    out = tmp_path / "scratch-conv3d" / "train-val.npz"
    assert invoke(data_dir, classifier_ckpt, out).exit_code == 0
    expected = pd.read_csv(data_dir / "val.csv", dtype=str)["video_id"].to_numpy()
    cache = read_prob_cache(out, num_classes=33, expected_ids=expected)
    assert cache.probs.dtype == np.float32
    np.testing.assert_allclose(cache.probs.sum(1), 1.0, atol=1e-5)


def test_provenance_names_member_checkpoint_hash_tta_flip_split_and_fit(data_dir, classifier_ckpt, tmp_path):
    out = tmp_path / "c.npz"
    assert invoke(data_dir, classifier_ckpt, out, "--tta", "five_crop", "--flip", split="test").exit_code == 0
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["member"] == "scratch-conv3d"
    assert provenance["checkpoint"] == str(classifier_ckpt)
    assert provenance["checkpoint_sha256"] == hashlib.sha256(classifier_ckpt.read_bytes()).hexdigest()
    assert (provenance["tta"], provenance["flip"], provenance["split"], provenance["fit"]) == ("five_crop", True, "test", "train")
    assert provenance["num_clips"] == len(pd.read_csv(data_dir / "test.csv"))


def test_tta_views_change_the_probabilities_but_not_the_clips(data_dir, classifier_ckpt, tmp_path):
    assert invoke(data_dir, classifier_ckpt, tmp_path / "a.npz").exit_code == 0
    assert invoke(data_dir, classifier_ckpt, tmp_path / "b.npz", "--tta", "five_crop", "--flip").exit_code == 0
    a, b = read_prob_cache(tmp_path / "a.npz"), read_prob_cache(tmp_path / "b.npz")
    assert np.array_equal(a.ids, b.ids)
    assert not np.allclose(a.probs, b.probs)


def test_same_inputs_give_identical_caches(data_dir, classifier_ckpt, tmp_path):
    for name in ("a", "b"):
        assert invoke(data_dir, classifier_ckpt, tmp_path / f"{name}.npz", "--tta", "five_crop").exit_code == 0
    assert np.array_equal(read_prob_cache(tmp_path / "a.npz").probs, read_prob_cache(tmp_path / "b.npz").probs)


def test_encoder_checkpoint_is_refused_naming_the_file(data_dir, tmp_path):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, kind="encoder", model_config={"encoder": "conv3d_tiny", "img_size": 16}, state_dict=build_encoder({"encoder": "conv3d_tiny", "img_size": 16}).state_dict())
    result = invoke(data_dir, path, tmp_path / "c.npz")
    assert result.exit_code == 2
    assert "enc.pt: holds a 'encoder' checkpoint, expected 'classifier'" in result.output
    assert not (tmp_path / "c.npz").exists()


def test_missing_checkpoint_is_refused_naming_the_file(data_dir, tmp_path):
    result = invoke(data_dir, tmp_path / "absent.pt", tmp_path / "c.npz")
    assert result.exit_code == 2 and "absent.pt: checkpoint not found" in result.output


def test_bad_member_id_is_refused(data_dir, classifier_ckpt, tmp_path):
    args = ["--data", data_dir, "--ckpt", classifier_ckpt, "--split", "val", "--member", "a b/c", "--fit", "train", "--out", tmp_path / "c.npz"]
    result = CliRunner().invoke(cache_probs.main, [str(a) for a in args])
    assert result.exit_code == 2 and "member id 'a b/c'" in result.output


def test_one_call_caches_val_and_test_exactly_as_two_separate_calls(data_dir, classifier_ckpt, tmp_path):
    args = ["--data", data_dir, "--ckpt", classifier_ckpt, "--member", "scratch-conv3d", "--fit", "train", "--threads", "1",
            "--split", "val", "--out", tmp_path / "both" / "train-val.npz", "--split", "test", "--out", tmp_path / "both" / "train-test.npz"]
    assert CliRunner().invoke(cache_probs.main, [str(a) for a in args]).exit_code == 0
    for split in ("val", "test"):
        assert invoke(data_dir, classifier_ckpt, tmp_path / f"alone-{split}.npz", split=split).exit_code == 0
        together, alone = read_prob_cache(tmp_path / "both" / f"train-{split}.npz"), read_prob_cache(tmp_path / f"alone-{split}.npz")
        assert np.array_equal(together.ids, alone.ids) and np.array_equal(together.probs, alone.probs)
        assert json.loads((tmp_path / "both" / f"train-{split}.json").read_text())["split"] == split


@pytest.mark.parametrize("pairs", [["--split", "val", "--split", "test", "--out", "a.npz"], ["--split", "val", "--split", "val", "--out", "a.npz", "--out", "b.npz"]])
def test_splits_and_outs_must_pair_up(data_dir, classifier_ckpt, tmp_path, pairs):
    args = ["--data", data_dir, "--ckpt", classifier_ckpt, "--member", "m", "--fit", "train", *[tmp_path / p if p.endswith(".npz") else p for p in pairs]]
    result = CliRunner().invoke(cache_probs.main, [str(a) for a in args])
    assert result.exit_code == 2 and "give each split once with its own --out" in result.output
    assert not list(tmp_path.glob("*.npz"))


def test_a_guard_that_fell_back_caches_the_previous_rounds_weights_under_this_member(data_dir, classifier_ckpt, tmp_path):
    torch.manual_seed(1)
    own = tmp_path / "own.pt"
    save_checkpoint(own, kind="classifier", model_config=CONFIG, state_dict=build_model(CONFIG).state_dict())
    guard = tmp_path / "guard.json"
    guard.write_text(json.dumps({"member": "scratch-conv3d", "kept_member": "prev", "fallback": True, "previous_member": "prev"}))
    assert invoke(data_dir, own, tmp_path / "own.npz").exit_code == 0
    assert invoke(data_dir, classifier_ckpt, tmp_path / "prev.npz").exit_code == 0
    result = invoke(data_dir, own, tmp_path / "kept.npz", "--guard", guard, "--candidate", f"prev={classifier_ckpt}")
    assert result.exit_code == 0, result.output
    kept, previous, unguarded = (read_prob_cache(tmp_path / f"{n}.npz").probs for n in ("kept", "prev", "own"))
    assert np.array_equal(kept, previous) and not np.array_equal(kept, unguarded)
    provenance = json.loads((tmp_path / "kept.json").read_text())
    assert provenance["checkpoint"] == str(classifier_ckpt)
    assert provenance["pseudo_guard"]["fallback"] and provenance["pseudo_guard"]["kept_member"] == "prev"
