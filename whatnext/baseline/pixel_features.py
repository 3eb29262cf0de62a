"""Pixel features of the baseline: each clip's 4 frames as small grey images plus their differences.

A clip becomes float32 [7 * side * side]: the 4 frames, decoded straight to ``side`` x ``side`` (Pillow's
draft and area-like bilinear resize), converted to grey (ITU-R 601 luma) in [0, 1], followed by the 3
differences of consecutive grey frames (frame k+1 minus frame k).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whatnext.data.zip_dataset import ClipDataset

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey_clip_features(frames: np.ndarray) -> np.ndarray:
    """uint8 [n, T, 3, H, W] clips -> float32 [n, (2T - 1) * H * W]: grey frames, then their differences."""
    grey = np.einsum("ntchw,c->nthw", frames.astype(np.float32) / 255.0, LUMA)
    return np.concatenate([grey.reshape(len(grey), -1), np.diff(grey, axis=1).reshape(len(grey), -1)], axis=1)


def split_features(data_dir: str | Path, split: str, side: int = 16) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip ids, labels (int64 [n]; -1 for test) and features (float32 [n, 7 * side * side]) of a split."""
    dataset = ClipDataset(data_dir, split, frame_size=side)
    frames = np.stack([dataset.read_frames(i).numpy() for i in range(len(dataset))])
    return list(dataset.clip_ids), dataset.labels, grey_clip_features(frames)
