"""Class probabilities of a classifier over a split, with test-time views, and top-k accuracy.

Shared by per-epoch validation while finetuning and by ``whatnext.inference.cache_probs``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.tta import TTAViews, merge_view_probs
from whatnext.runtime.precision import Acceleration
from whatnext.tasks import Task


@torch.no_grad()
def predict_probs(model: torch.nn.Module, dataset, views: TTAViews, normaliser: ClipNormaliser, batch_size: int = 32,
                  workers: int = 0, desc: str | None = None, accel: Acceleration | None = None,
                  task: Task | None = None) -> tuple[list[str], np.ndarray]:
    """Probabilities of every clip of ``dataset`` (opened with ``transform=views``).

    Items are (views uint8 [V, T, C, H, W], label, clip_id); batches go to the model's device and
    through ``normaliser``; the model sees all V views, flipped views' mirror columns are mapped back
    and the V softmaxes averaged. ``accel``: the autocast and loader settings (default: fp32 on the model's
    device); the softmax is taken in fp32 whatever the precision. ``task`` (default whatnext): a task of
    several heads takes a softmax per head block (:meth:`whatnext.tasks.Task.softmax`) and maps no flipped
    columns back. Returns (clip ids in dataset order, float32 [n, num_classes]). Leaves ``model`` in eval mode.
    """
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    accel = accel or Acceleration(device, "fp32")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **accel.loader_kwargs(workers),
                        generator=torch.Generator().manual_seed(0))  # leaves the global RNG (training's) untouched
    ids: list[str] = []
    chunks: list[torch.Tensor] = []
    for frames, _, clip_ids in tqdm(loader, desc=desc, unit="batch", disable=desc is None, mininterval=1.0):
        b, v = frames.shape[:2]
        with accel.autocast():
            logits = model(normaliser(frames.to(device, non_blocking=True).flatten(0, 1)))
        if task is None or len(task.heads) == 1:
            probs = logits.float().softmax(-1).reshape(b, v, -1)
            chunks.append(merge_view_probs(probs.cpu(), views.flipped))
        else:
            probs = task.softmax(logits).reshape(b, v, -1)
            chunks.append(merge_view_probs(probs.cpu(), views.flipped, task.identity_mirror()))
        ids.extend(clip_ids)
    probs = torch.cat(chunks).numpy().astype(np.float32) if chunks else np.zeros((0, 0), np.float32)
    return ids, probs


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of clips whose label is among the ``k`` highest probabilities (ties: lowest class id first)."""
    if len(labels) == 0:
        raise ValueError("top-k accuracy of an empty split")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(labels)[:, None]).any(axis=1).mean())
