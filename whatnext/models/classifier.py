"""The classifier every finetuned member is: encoder tokens -> temporal head -> logits."""

from __future__ import annotations

import torch
from torch import nn


class VideoClassifier(nn.Module):
    """Clip [B, T, C, H, W] (normalised floats) -> logits [B, num_classes].

    ``encoder`` maps the clip to tokens [B, T', N, D]; ``head`` maps tokens to logits.
    For auxiliary objectives, :meth:`encode` gives per-step features [B, T', D] (the mean of
    each step's tokens; T' = T for per-frame encoders, T/2 for the tubelet ViT) and
    :meth:`forward_with_features` returns logits and those features from one encoder pass.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, model_config: dict):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.model_config = model_config

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] -> per-step features [B, T', D]."""
        return self.encoder(x).mean(2)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, C, H, W] -> (logits [B, num_classes], per-step features [B, T', D])."""
        tokens = self.encoder(x)
        return self.head(tokens), tokens.mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
