"""Frozen-feature probe: how much of the label a (pretrained or random) encoder's features carry, with no
finetuning, so that the representation and the finetune can be told apart.

Each clip (whole frames at the encoder's size, normalised, no augmentation) goes through the frozen encoder;
its tokens [T', N, D] are pooled per time step by mean and by max over the N positions (max keeps a small
object that a mean over the frame would dilute) and flattened to one vector [2 * T' * D]. A multinomial
logistic regression (scikit-learn, standardised features) fits the training split and scores the other.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset


@torch.no_grad()
def pooled_features(encoder: nn.Module, clips: ClipDataset, normaliser: ClipNormaliser, batch_size: int = 128) -> np.ndarray:
    """Features float32 [n, 2 * T' * D] of every clip of ``clips`` (opened without a transform, frames at the
    encoder's size): per time step, the mean then the max of the encoder's tokens over positions."""
    was_training = encoder.training
    encoder.eval()
    chunks = []
    for start in range(0, len(clips), batch_size):
        frames = torch.stack([clips.read_frames(i) for i in range(start, min(start + batch_size, len(clips)))])
        tokens = encoder(normaliser(frames))  # [B, T', N, D]
        chunks.append(torch.cat([tokens.mean(2), tokens.amax(2)], dim=-1).flatten(1))
    encoder.train(was_training)
    return torch.cat(chunks).numpy().astype(np.float32)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 c: float = 0.1, max_iter: int = 1000) -> float:
    """Top-1 on (test_x, test_y) of an L2-regularised (inverse strength ``c``) logistic regression fitted on
    standardised (train_x, train_y); features [n, F], labels int [n]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(C=c, max_iter=max_iter).fit(scaler.transform(train_x), train_y)
    return float((model.predict(scaler.transform(test_x)) == np.asarray(test_y)).mean())
