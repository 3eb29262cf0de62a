"""Two heads on one encoder, the brief's ResNet50 + BiLSTM, local backbone weights, and the per-head losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from whatnext.finetune.losses import HeadLoss, TaskLoss, balanced_weights, focal_loss
from whatnext.finetune.track_a_scratch import backbone_state
from whatnext.models import build_model
from whatnext.runtime.checkpoint import CheckpointError, load_encoder_weights
from whatnext.runtime.errors import BadInput
from whatnext.tasks import WHATNEXT, epic_task


def test_brief_resnet50_bilstm_gives_verb_and_noun_logits():
    task = epic_task()
    model = build_model({"encoder": "resnet50", "head": "lstm2", "img_size": 32, "num_frames": 4,
                         "num_classes": task.num_outputs}).eval()
    lstm = model.head.pooler.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional, lstm.dropout) == (2048, 1024, 2, True, 0.3)
    with torch.no_grad():
        logits = model(torch.randn(2, 4, 3, 32, 32))
    heads = task.split(logits)
    assert heads["verb"].shape == (2, 97) and heads["noun"].shape == (2, 300)


def test_local_resnet50_weights_load_and_bad_ones_are_named(tmp_path):
    model = build_model({"encoder": "resnet50", "head": "lstm2", "img_size": 32, "num_frames": 2, "num_classes": 10})
    weights = torchvision.models.resnet50(weights=None).state_dict()  # the torchvision file's keys, fc included
    torch.save(weights, tmp_path / "resnet50.pth")
    load_encoder_weights(model, backbone_state(tmp_path / "resnet50.pth"), tmp_path / "resnet50.pth")
    assert torch.equal(model.encoder.backbone.conv1.weight, weights["conv1.weight"])
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="bad.pth"):
        load_encoder_weights(model, backbone_state(tmp_path / "bad.pth"), tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(BadInput, match="junk.pth"):
        backbone_state(tmp_path / "junk.pth")


def test_balanced_weights_inverse_sqrt_frequency():
    w = balanced_weights(np.array([100, 1, 0, 25]))
    expected = np.array([0.1, 1.0, 0.0, 0.2]) * 3 / 1.3
    assert np.allclose(w.numpy(), expected, atol=1e-6) and w[2] == 0


def test_focal_loss():
    logits, labels = torch.randn(8, 5), torch.randint(0, 5, (8,))
    assert torch.allclose(focal_loss(logits, labels, 0.0), F.cross_entropy(logits, labels))
    assert focal_loss(logits, labels, 2.0) < F.cross_entropy(logits, labels)
    sure = torch.tensor([[10.0, 0.0]])
    assert focal_loss(sure, torch.tensor([0]), 2.0) < 1e-6 * F.cross_entropy(sure, torch.tensor([0]))


def test_whatnext_loss_is_the_label_smoothed_cross_entropy():
    logits, labels = torch.randn(6, 33), torch.randint(0, 33, (6,))
    assert torch.equal(TaskLoss(WHATNEXT, "ce", 0.1)(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1))


@pytest.mark.parametrize("kind", ["ce", "focal", "balanced"])
def test_task_loss_sums_the_heads(kind):
    task = epic_task(3, 4)
    train = task.encode(np.array([0, 0, 0, 1, 2]), np.array([3, 3, 1, 0, 2]))
    loss = TaskLoss(task, kind, 0.0, 2.0, train)
    logits, labels = torch.randn(5, 7), torch.as_tensor(train)
    verbs, nouns = task.decode(labels).values()
    verb_loss = HeadLoss(kind, 0.0, 2.0, np.bincount(task.decode(train)["verb"], minlength=3))(logits[:, :3], verbs)
    noun_loss = HeadLoss(kind, 0.0, 2.0, np.bincount(task.decode(train)["noun"], minlength=4))(logits[:, 3:], nouns)
    assert torch.allclose(loss(logits, labels), verb_loss + noun_loss)
    if kind == "balanced":
        assert torch.allclose(loss.heads["verb"].weight, balanced_weights(np.array([3, 1, 1])))
