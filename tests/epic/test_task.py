"""whatnext.tasks: packed labels, head blocks, and the metrics of one and of two heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whatnext.finetune.evaluation import topk_accuracy
from whatnext.tasks import WHATNEXT, TaskError, action_topk_hits, epic_task, load_task


def test_whatnext_task_is_the_challenge():
    assert WHATNEXT.heads == (("label", 33),) and WHATNEXT.frames == 4 and WHATNEXT.submission == "csv"
    assert WHATNEXT.num_outputs == 33 and WHATNEXT.num_labels == 33


def test_epic_default_sizes_are_the_real_ones():
    task = load_task("epic")
    assert task.heads == (("verb", 97), ("noun", 300)) and task.num_outputs == 397 and task.submission == "pt"


def test_sizes_come_from_the_class_files(epic_dir):
    assert load_task("epic", epic_dir).heads == (("verb", 5), ("noun", 6))


def test_unknown_task_and_bad_class_file(tmp_path):
    with pytest.raises(TaskError, match="unknown task 'kinetics'"):
        load_task("kinetics")
    (tmp_path / "verb_classes.csv").write_text("id,key\n0,take\n2,put\n")
    (tmp_path / "noun_classes.csv").write_text("id,key\n0,tap\n")
    with pytest.raises(TaskError, match="verb_classes.csv: class ids must be 0..n-1"):
        load_task("epic", tmp_path)


def test_packed_labels_round_trip():
    task = epic_task(97, 300)
    verbs, nouns = np.array([0, 96, 5]), np.array([299, 0, 7])
    packed = task.encode(verbs, nouns)
    assert packed.tolist() == [299, 96 * 300, 5 * 300 + 7]
    back = task.decode(packed)
    assert back["verb"].tolist() == verbs.tolist() and back["noun"].tolist() == nouns.tolist()
    assert task.decode(torch.as_tensor(packed))["noun"].tolist() == nouns.tolist()


def test_softmax_is_per_head_block():
    task = epic_task(3, 4)
    probs = task.softmax(torch.randn(5, 7))
    blocks = task.split(probs)
    assert torch.allclose(blocks["verb"].sum(1), torch.ones(5)) and torch.allclose(blocks["noun"].sum(1), torch.ones(5))
    with pytest.raises(ValueError, match="expected 7 outputs"):
        task.split(torch.zeros(5, 6))


def test_one_head_metrics_match_topk_accuracy():
    rng = np.random.default_rng(0)
    probs, labels = rng.dirichlet(np.ones(33), 50), rng.integers(0, 33, 50)
    scores = WHATNEXT.metrics(probs, labels)
    assert scores == {"top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, 5)}


def test_action_counts_only_when_both_heads_are_right():
    task = epic_task(2, 3)
    #                verb probs    noun probs
    probs = np.array([[0.9, 0.1, 0.7, 0.2, 0.1],   # verb 0, noun 0: both right
                      [0.9, 0.1, 0.1, 0.8, 0.1],   # verb 0 right, noun 1 wrong
                      [0.2, 0.8, 0.1, 0.1, 0.8]])  # verb 1 wrong, noun 2 right
    labels = task.encode([0, 0, 0], [0, 0, 2])
    scores = task.metrics(probs, labels)
    assert scores["verb_top1"] == pytest.approx(2 / 3) and scores["noun_top1"] == pytest.approx(2 / 3)
    assert scores["action_top1"] == pytest.approx(1 / 3)
    assert scores["action_top5"] == 1.0  # 6 pairs in all: the 5 best always hold these


def test_action_top_k_pairs_rank_by_product():
    verb = np.array([[0.6, 0.4]])
    noun = np.array([[0.5, 0.3, 0.2]])
    # products: (0,0) .30, (1,0) .20, (0,1) .18, (1,1) .12, (0,2) .12, (1,2) .08
    assert action_topk_hits(verb, noun, np.array([1]), np.array([0]), 2).tolist() == [True]
    assert action_topk_hits(verb, noun, np.array([0]), np.array([1]), 2).tolist() == [False]
    assert action_topk_hits(verb, noun, np.array([0]), np.array([1]), 3).tolist() == [True]
