"""Frozen-feature probe: feature layout, and a probe that can fail (separable vs shuffled labels)."""

import numpy as np
import pytest
import torch
from torch import nn

from whatnext.analysis.feature_probe import linear_probe, pooled_features


class _Clips:
    """Two clips of 4 frames [3, 8, 8]: all zeros, and zeros with one bright pixel."""

    def __len__(self):
        return 2

    def read_frames(self, i):
        frames = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
        if i == 1:
            frames[:, :, 0, 0] = 255
        return frames


class _PixelTokens(nn.Module):
    """Tokens [B, T'=4, N=64, D=3]: every pixel a token, its channels the features."""

    def forward(self, x):
        return x.flatten(3).transpose(2, 3)


def test_pooled_features_are_per_step_mean_then_max_of_the_tokens():
    normaliser = lambda frames: frames.float() / 255  # noqa: E731
    features = pooled_features(_PixelTokens(), _Clips(), normaliser, batch_size=1)
    assert features.shape == (2, 4 * 2 * 3) and features.dtype == np.float32
    per_step = features.reshape(2, 4, 6)
    np.testing.assert_allclose(per_step[0], 0.0)
    np.testing.assert_allclose(per_step[1, :, :3], 1 / 64, rtol=1e-6)  # one bright token of 64: the mean
    np.testing.assert_allclose(per_step[1, :, 3:], 1.0)  # the max keeps it whole


def test_linear_probe_reads_separable_labels_and_not_shuffled_ones():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x[np.arange(400), labels] += 3.0  # feature k lights up for class k
    assert linear_probe(x[:300], labels[:300], x[300:], labels[300:]) > 0.9
    shuffled = rng.permutation(labels[:300])
    assert linear_probe(x[:300], shuffled, x[300:], labels[300:]) < 0.45


def test_linear_probe_of_constant_features_is_the_majority_or_less():
    labels = np.array([0] * 30 + [1] * 10)
    x = np.ones((40, 3), np.float32)
    assert linear_probe(x, labels, x, labels) == pytest.approx(0.75)
