"""A fixed reconstruction probe: how well a pretrained model fills in masks, comparable across generations.

The per-epoch training loss of a generation is a noisy measure (random crops, masks and decoder
subsets, a mean over the epoch while the model changes). The probe scores the finished model on the
same clips with the same masks every time: the first ``clips`` clips of a split, whole frames
resized to the model's size (no augmentation), masks drawn from a fixed seed, every masked token
reconstructed (whatever the model's ``decoder_keep``), the model's own loss (target, weights) averaged over clips.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset
from whatnext.ssl.mae_models import MaskedAutoencoder
from whatnext.ssl.masking import reconstructed_indices, visible_indices

PROBE_SEED = 0


@torch.no_grad()
def mean_over_clips(model: torch.nn.Module, clips: ClipDataset, normaliser: ClipNormaliser,
                    batch_loss: Callable[[torch.Tensor], torch.Tensor], count: int, batch_size: int,
                    what: str) -> float:
    """Mean of ``batch_loss(x)`` (a scalar mean over the batch) over the first ``count`` clips of ``clips``,
    weighted by batch size; ``x`` is a batch of normalised whole clips on the model's device, the model in
    eval mode (its mode is restored after). ``what`` names the probe in the error for an empty split."""
    n = min(count, len(clips))
    if n == 0:
        raise ValueError(f"{clips.csv_path}: no clips to probe the {what} on")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, n, batch_size):
        frames = torch.stack([clips.read_frames(i) for i in range(start, min(start + batch_size, n))])
        total += batch_loss(normaliser(frames.to(device))).item() * len(frames)
    model.train(was_training)
    return total / n


def probe_loss(model: MaskedAutoencoder, clips: ClipDataset, normaliser: ClipNormaliser, count: int = 256,
               batch_size: int = 64) -> float:
    """Mean reconstruction loss (normalised-pixel MSE on every masked patch) of ``model`` over the first
    ``count`` clips of ``clips`` (opened without a transform, frames at the model's size)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)

    def batch_loss(x: torch.Tensor) -> torch.Tensor:
        mask = model.masking(len(x), model.encoder.grid, generator).to(x.device)
        seq_mask = model.encoder.to_sequences(mask)
        ids_keep = visible_indices(seq_mask)
        patches = model.encoder.patch_sequences(x)
        loss, _, _ = model.reconstruct(patches, model.encoder.encode_patches(patches, ids_keep), ids_keep,
                                       reconstructed_indices(seq_mask), model.loss_targets(x, patches))
        return loss

    return mean_over_clips(model, clips, normaliser, batch_loss, count, batch_size, "reconstruction")
