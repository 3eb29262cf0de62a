"""Training batches of whole decoded clips: the loaders decode and collate, the training step augments.

``collate_clips(items)`` turns ``ClipDataset`` items ``(frames, label, clip_id)``, frames a clip uint8
[T, C, H_i, W_i] or the list of its T frames [C, H_i, W_i] (``ClipDataset(..., stacked=False)``, which
saves a copy), into one batch ``(frames uint8 [B, T, C, H, W], labels long [B], clip_ids, frame_sizes)``:
clips of different frame sizes (the challenge's frames keep their aspect ratio) are padded with zeros at
the bottom and right to the largest ``H, W`` of the batch, and ``frame_sizes[b] = (H_b, W_b)`` (int pairs,
which stay on the host when the batch moves to the GPU) says which part is clip b's. The batch is stored
channels-last (strides of [B, T, H, W, C], the decoders' own layout, on which torch's uint8 resampling is
fastest), so every frame is copied once, in one pass; in a DataLoader worker it is allocated in shared
memory (as torch's default collate does), so sending it to the training process copies nothing more.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.utils.data import get_worker_info


def collate_clips(items: Sequence[tuple[torch.Tensor | Sequence[torch.Tensor], int, str]]):
    """``(frames uint8 [B, T, C, H, W], labels long [B], clip_ids [B], frame_sizes [(H_b, W_b)] * B)``."""
    frames = [item[0] for item in items]
    sizes = [tuple(clip[0].shape[-2:]) for clip in frames]
    t, c = len(frames[0]), frames[0][0].shape[0]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    uniform = len(set(sizes)) == 1
    shape = (len(items), t, height, width, c)
    if get_worker_info() is not None:
        batch = torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(math.prod(shape))).view(shape)
        if not uniform:
            batch.zero_()
    else:
        batch = (torch.empty if uniform else torch.zeros)(shape, dtype=torch.uint8)
    for out, clip, (h, w) in zip(batch, frames, sizes):
        for out_frame, frame in zip(out, clip):
            out_frame[:h, :w] = frame.permute(1, 2, 0)
    labels = torch.tensor([int(item[1]) for item in items], dtype=torch.long)
    return batch.permute(0, 1, 4, 2, 3), labels, [item[2] for item in items], sizes
