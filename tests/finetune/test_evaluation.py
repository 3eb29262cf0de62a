"""Probabilities under test-time views and top-k accuracy, on hand-made inputs."""

import numpy as np
import pytest
import torch
from torch import nn

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.tta import TTAViews
from whatnext.finetune.evaluation import predict_probs, topk_accuracy

LEFT, RIGHT = load_class_table().mirror_pairs[0]  # 18 (left to right), 19
NORMALISER = ClipNormaliser([0.5] * 3, [0.25] * 3)


def test_top1_and_top5_on_hand_made_probabilities():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    labels = np.array([1, 2, 0])
    assert topk_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(probs, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(probs, labels, 3) == 1.0


def test_topk_of_an_empty_split_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        topk_accuracy(np.zeros((0, 3)), np.zeros(0, int), 1)


class LeftBrightIsClass18(nn.Module):
    """A mirror-sensitive model: class 18 when the left half is brighter, class 19 otherwise."""

    def forward(self, x):  # [B, T, C, H, W]
        half = x.shape[-1] // 2
        left_minus_right = x[..., :half].mean((1, 2, 3, 4)) - x[..., half:].mean((1, 2, 3, 4))
        logits = torch.zeros(x.shape[0], 33)
        logits[:, LEFT] = 10 * left_minus_right
        logits[:, RIGHT] = -10 * left_minus_right
        return logits


class LeftBrightClips:
    """Two clips whose frames are bright on the left half, dark on the right."""

    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 2

    def __getitem__(self, i):
        frames = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
        frames[..., :8] = 255
        return self.transform(frames), -1, f"clip{i}"


@pytest.mark.parametrize("five_crop", [False, True])
def test_flipped_views_are_swapped_back_so_flip_tta_keeps_the_mirror_class(five_crop):
    plain = TTAViews(16, five_crop=five_crop, flip=False, crop_fraction=1.0)
    flipped = TTAViews(16, five_crop=five_crop, flip=True, crop_fraction=1.0)
    ids, p_plain = predict_probs(LeftBrightIsClass18(), LeftBrightClips(plain), plain, NORMALISER, batch_size=2)
    _, p_flip = predict_probs(LeftBrightIsClass18(), LeftBrightClips(flipped), flipped, NORMALISER, batch_size=2)
    assert ids == ["clip0", "clip1"]
    assert (p_plain.argmax(1) == LEFT).all() and (p_flip.argmax(1) == LEFT).all()
    np.testing.assert_allclose(p_flip, p_plain, atol=1e-6)
    np.testing.assert_allclose(p_flip.sum(1), 1.0, atol=1e-6)


def test_prediction_leaves_the_global_rng_untouched():
    """Per-epoch validation must not shift the training run's random stream."""
    views = TTAViews(16, five_crop=False)
    before = torch.get_rng_state()
    predict_probs(LeftBrightIsClass18(), LeftBrightClips(views), views, NORMALISER, batch_size=1)
    assert torch.equal(before, torch.get_rng_state())
