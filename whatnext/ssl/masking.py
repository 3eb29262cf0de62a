"""Masking strategies for masked-autoencoder pretraining, behind one interface.

A strategy is called as ``strategy(batch_size, grid=(T', N), generator=g)`` and returns a bool
mask [B, T', N], True = masked (hidden from the encoder, reconstructed by the decoder). Every time
step masks exactly ``round(ratio * N)`` of its N patches, so visible-token counts are equal across
sequences and the encoder can run on a dense [S, L_vis] index tensor (:func:`visible_indices`).
Randomness comes only from the given ``torch.Generator`` (CPU), so a seed fixes the masks.
"""

from __future__ import annotations

import torch


class Masking:
    """Base: draws one random permutation of the N patches per independent row of ``_rows``."""

    name = ""

    def __init__(self, ratio: float):
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"mask ratio must lie in (0, 1), got {ratio}")
        self.ratio = ratio

    def num_masked(self, num_patches: int) -> int:
        count = round(self.ratio * num_patches)
        if not 0 < count < num_patches:
            raise ValueError(f"mask ratio {self.ratio} of {num_patches} patches leaves no masked or no visible patch")
        return count

    def _rows(self, batch_size: int, steps: int) -> tuple[int, int]:
        raise NotImplementedError

    def __call__(self, batch_size: int, grid: tuple[int, int], generator: torch.Generator | None = None) -> torch.Tensor:
        steps, num_patches = grid
        noise = torch.rand(*self._rows(batch_size, steps), num_patches, generator=generator)
        order = noise.argsort(dim=-1)
        mask = torch.zeros_like(noise, dtype=torch.bool)
        mask.scatter_(-1, order[..., : self.num_masked(num_patches)], True)
        return mask.expand(batch_size, steps, num_patches).contiguous()


class RandomFrameMasking(Masking):
    """Independent random patches in every frame (MAE-2D, ratio 0.75)."""

    name = "random_frame"

    def _rows(self, batch_size: int, steps: int) -> tuple[int, int]:
        return batch_size, steps


class TubeMasking(Masking):
    """The same random patches at every time step of a clip (VideoMAE tube masking, ratio 0.9)."""

    name = "tube"

    def _rows(self, batch_size: int, steps: int) -> tuple[int, int]:
        return batch_size, 1


MASKINGS = {cls.name: cls for cls in (RandomFrameMasking, TubeMasking)}


def build_masking(name: str, ratio: float) -> Masking:
    if name not in MASKINGS:
        raise ValueError(f"unknown masking {name!r}; known: {', '.join(sorted(MASKINGS))}")
    return MASKINGS[name](ratio)


def visible_indices(mask: torch.Tensor) -> torch.Tensor:
    """Bool mask [S, L] (True = masked) -> ascending indices of the visible tokens [S, L_vis].

    Every row must have the same number of visible tokens.
    """
    return _indices_where(~mask, "visible")


def reconstructed_indices(mask: torch.Tensor, keep: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask [S, L] -> ascending indices [S, L_rec] of the masked tokens the decoder reconstructs.

    ``keep`` = 1: every masked token. ``keep`` < 1: a random ``round(keep * L_masked)`` of them per
    sequence (at least one), drawn from ``generator`` -- VideoMAE V2's decoder masking, which cuts the
    decoder's tokens and the loss to that share.
    """
    ids = _indices_where(mask, "masked")
    count = max(1, round(keep * ids.shape[1]))
    if count == ids.shape[1]:
        return ids
    picks = torch.rand(ids.shape, generator=generator).argsort(dim=1)[:, :count].sort(dim=1).values
    return torch.gather(ids, 1, picks.to(ids.device))


def _indices_where(selected: torch.Tensor, what: str) -> torch.Tensor:
    counts = selected.sum(1)
    if counts.numel() and not bool((counts == counts[0]).all()):
        raise ValueError(f"every sequence must keep the same number of {what} tokens")
    return selected.nonzero()[:, 1].reshape(selected.shape[0], -1)
