"""The per-head stacker CLI: shared folds, action metrics, submission.pt, and bad input named (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from whatnext.ensemble.head_stacker import main
from whatnext.runtime.prob_cache import ProbCacheError, read_prob_cache, write_prob_cache
from whatnext.tasks import epic_task


def write_data(folder, verbs, nouns, n_val=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("verb_classes.csv", verbs), ("noun_classes.csv", nouns)):
        (folder / name).write_text("id,key\n" + "".join(f"{i},k{i}\n" for i in range(n)))
    v, n_ = rng.integers(0, verbs, n_val), rng.integers(0, nouns, n_val)
    (folder / "val.csv").write_text("narration_id,verb_class,noun_class\n" + "".join(f"V_{i},{a},{b}\n" for i, (a, b) in enumerate(zip(v, n_))))
    (folder / "test.csv").write_text("narration_id\n" + "".join(f"T_{i}\n" for i in range(n_test)))
    return v, n_


def member_probs(rng, labels, size, skill):
    """Probabilities [n, size] putting extra mass ``skill`` on the true class."""
    p = rng.dirichlet(np.ones(size), len(labels))
    p[np.arange(len(labels)), labels] += skill
    return p / p.sum(1, keepdims=True)


def test_head_stacker_writes_submission_and_action_scores(tmp_path):
    task = epic_task(4, 5)
    verbs, nouns = write_data(tmp_path / "data", 4, 5)
    rng = np.random.default_rng(1)
    for member, skill in (("good", 2.0), ("weak", 0.3)):
        for split, (v, n) in (("val", (verbs, nouns)), ("test", (rng.integers(0, 4, 20), rng.integers(0, 5, 20)))):
            ids = [f"V_{i}" for i in range(60)] if split == "val" else [f"T_{i}" for i in range(20)]
            probs = np.concatenate([member_probs(rng, v, 4, skill), member_probs(rng, n, 5, skill)], axis=1)
            write_prob_cache(tmp_path / "probs" / member / f"train-{split}.npz", ids, probs, {"member": member}, head_sizes=task.sizes)
    (tmp_path / "members.txt").write_text("good\nweak\n")
    out = tmp_path / "submission.pt"
    result = CliRunner().invoke(main, ["--cache-dir", str(tmp_path / "probs"), "--members", str(tmp_path / "members.txt"),
                                       "--data", str(tmp_path / "data"), "--out", str(out), "--report", str(tmp_path / "r.json"),
                                       "--test-probs", str(tmp_path / "t.npz"), "--folds", "3"])
    assert result.exit_code == 0, result.output
    entries = torch.load(out, weights_only=True)
    assert [e["narration_id"] for e in entries] == [f"T_{i}" for i in range(20)]
    assert entries[0]["verb_output"].shape == (4,) and entries[0]["noun_output"].shape == (5,)
    assert torch.isclose(entries[3]["noun_output"].sum(), torch.tensor(1.0), atol=1e-4)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["best_member"] == "good" and report["num_folds"] == 3
    good = report["members_held_out"]["good"]
    assert good["action_top1"]["mean"] <= min(good["verb_top1"]["mean"], good["noun_top1"]["mean"])
    assert set(report["held_out"]) == {"stacker", "mean_log_probs"} and set(report["per_head"]) == {"verb", "noun"}
    cache = read_prob_cache(tmp_path / "t.npz", num_classes=9)
    assert cache.probs.shape == (20, 9)


def test_head_sizes_checked_per_block(tmp_path):
    probs = np.full((2, 5), 0.2)  # one block of 5 sums to 1, but two blocks (2 + 3) do not
    with pytest.raises(ProbCacheError, match=r"in columns 0..1 sum to 0.400000, not 1"):
        write_prob_cache(tmp_path / "x.npz", ["a", "b"], probs, {}, head_sizes=(2, 3))


def test_class_out_of_range_exits_2(tmp_path):
    write_data(tmp_path / "data", 4, 5)
    (tmp_path / "data" / "val.csv").write_text("narration_id,verb_class,noun_class\nV_0,4,0\n")
    (tmp_path / "members.txt").write_text("good\n")
    result = CliRunner().invoke(main, ["--cache-dir", str(tmp_path), "--members", str(tmp_path / "members.txt"),
                                       "--data", str(tmp_path / "data"), "--out", str(tmp_path / "s.pt"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "val.csv: segment V_0: verb_class 4 outside 0..3" in result.output
