"""What a task decides: its label heads and their sizes, frames per clip and their sampling, its metrics and
its submission format. Every stage asks the task instead of assuming 33 classes and 4 frames.

Two tasks:

- ``whatnext`` (the default): one head ``label`` of 33 classes; the 4 frames covering the first 40% of a
  clip; top-1 (and top-5) accuracy; a ``video_name,predicted_class`` CSV submission.
- ``epic`` (EPIC-KITCHENS-100 action recognition): heads ``verb`` (97) and ``noun`` (300) sharing one
  encoder; T uniformly spaced frames of a segment (T = 16 or 32 on a GPU, small on the CPU), optionally
  several temporal clips per segment at test time; verb, noun and action top-1 (an action counts only when
  both heads are right) and top-5 recall; ``submission.pt``, a list of ``{"narration_id", "verb_output"
  [97], "noun_output" [300]}``. The head sizes are the data's (rows of ``verb_classes.csv`` and
  ``noun_classes.csv``), so a generated dataset may have fewer classes; 97 / 300 is the real default.

Labels travel as one integer per clip through every loader and batch (``collate_clips`` is unchanged): for
several heads it is the mixed-radix code ``verb * num_nouns + noun`` (:meth:`Task.encode`), which
:meth:`Task.decode` splits back. Outputs travel as one array [n, sum of head sizes], head blocks side by side
in head order (:meth:`Task.split`); each block is a probability distribution. NumPy only (torch lazily), so
the ensemble keeps the light install.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TASKS = ("whatnext", "epic")
EPIC_VERBS = 97
EPIC_NOUNS = 300
EPIC_CLASS_FILES = {"verb": "verb_classes.csv", "noun": "noun_classes.csv"}


class TaskError(ValueError):
    """A task name or a class file that does not describe a task."""


@dataclass(frozen=True)
class Task:
    """One task. ``heads``: ((name, size), ...) in output order; ``frames``: frames per clip the data gives
    (whatnext: always 4; epic: the default T, members may choose their own); ``sampling``: ``first_40pct``
    or ``uniform``; ``submission``: ``csv`` or ``pt``."""

    name: str
    heads: tuple[tuple[str, int], ...]
    frames: int
    sampling: str
    submission: str

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.heads)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(size for _, size in self.heads)

    @property
    def num_outputs(self) -> int:
        """Width of a model's output and of a probability cache: the sum of the head sizes."""
        return int(sum(self.sizes))

    @property
    def num_labels(self) -> int:
        """Number of distinct packed labels (product of the head sizes): 33, or verbs x nouns."""
        return int(np.prod(self.sizes))

    def slices(self) -> dict[str, slice]:
        """Each head's columns of an output array."""
        edges = np.cumsum((0,) + self.sizes)
        return {name: slice(int(a), int(b)) for name, a, b in zip(self.head_names, edges[:-1], edges[1:])}

    def split(self, array):
        """[..., num_outputs] (NumPy or torch) -> {head: [..., size]}."""
        if array.shape[-1] != self.num_outputs:
            raise ValueError(f"task {self.name}: expected {self.num_outputs} outputs {self.heads}, got {array.shape[-1]}")
        return {name: array[..., cut] for name, cut in self.slices().items()}

    def encode(self, *head_labels) -> np.ndarray:
        """Per-head labels (one int array per head, head order) -> packed labels int64 [n]."""
        packed = np.zeros(np.shape(head_labels[0]), dtype=np.int64)
        for labels, size in zip(head_labels, self.sizes):
            packed = packed * size + np.asarray(labels, dtype=np.int64)
        return packed

    def decode(self, packed) -> dict:
        """Packed labels [n] (NumPy or torch) -> {head: labels [n]}."""
        out = {}
        for name, size in reversed(self.heads):
            out[name] = packed % size
            packed = packed // size
        return dict(reversed(list(out.items())))

    def softmax(self, logits):
        """torch logits [..., num_outputs] -> probabilities, a softmax per head block (fp32)."""
        import torch

        return torch.cat([block.float().softmax(-1) for block in self.split(logits).values()], dim=-1)

    def identity_mirror(self) -> list[int]:
        """The column permutation of a left/right mirrored clip: none for EPIC (no label-aware flip)."""
        return list(range(self.num_outputs))

    def metrics(self, probs: np.ndarray, labels: np.ndarray, prefix: str = "") -> dict:
        """Scores of probabilities [n, num_outputs] against packed labels [n] (see :func:`task_metrics`)."""
        return task_metrics(self, probs, labels, prefix)


WHATNEXT = Task("whatnext", (("label", 33),), frames=4, sampling="first_40pct", submission="csv")


def epic_task(verbs: int = EPIC_VERBS, nouns: int = EPIC_NOUNS, frames: int = 16) -> Task:
    return Task("epic", (("verb", verbs), ("noun", nouns)), frames=frames, sampling="uniform", submission="pt")


def count_classes(path: Path) -> int:
    """Rows of an EPIC class file (``id,key,...``); ids must be 0..n-1 in order (TaskError naming the file)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            ids = [int(row["id"]) for row in csv.DictReader(handle)]
    except (OSError, KeyError, ValueError) as err:
        raise TaskError(f"{path}: not a class file with an integer 'id' column ({err})") from None
    if ids != list(range(len(ids))) or not ids:
        raise TaskError(f"{path}: class ids must be 0..n-1 in order, got {ids[:5]}... ({len(ids)} rows)")
    return len(ids)


def load_task(name: str, data_dir: str | Path | None = None) -> Task:
    """The task ``name``; for ``epic`` with a data dir, its head sizes are that dir's class files' rows."""
    if name == "whatnext":
        return WHATNEXT
    if name != "epic":
        raise TaskError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    if data_dir is None:
        return epic_task()
    sizes = {head: count_classes(Path(data_dir) / file) for head, file in EPIC_CLASS_FILES.items()}
    return epic_task(sizes["verb"], sizes["noun"])


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """bool [n]: label among the ``k`` highest scores (ties: lowest column first)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (top == np.asarray(labels)[:, None]).any(axis=1)


def action_topk_hits(verb_probs: np.ndarray, noun_probs: np.ndarray, verbs: np.ndarray, nouns: np.ndarray,
                     k: int) -> np.ndarray:
    """bool [n]: the true (verb, noun) pair among the ``k`` pairs of highest p(verb) x p(noun).

    The pairs are searched among the top-k verbs x top-k nouns, which hold the top k products; k = 1 is
    the joint arg-max, the pair of the two heads' own arg-maxes."""
    tv = np.argsort(-verb_probs, axis=1, kind="stable")[:, :k]
    tn = np.argsort(-noun_probs, axis=1, kind="stable")[:, :k]
    pv = np.take_along_axis(verb_probs, tv, 1)
    pn = np.take_along_axis(noun_probs, tn, 1)
    joint = (pv[:, :, None] * pn[:, None, :]).reshape(len(pv), -1)
    best = np.argsort(-joint, axis=1, kind="stable")[:, :k]
    pick_v = np.take_along_axis(tv, best // tn.shape[1], 1)
    pick_n = np.take_along_axis(tn, best % tn.shape[1], 1)
    return ((pick_v == np.asarray(verbs)[:, None]) & (pick_n == np.asarray(nouns)[:, None])).any(axis=1)


def task_metrics(task: Task, probs: np.ndarray, labels: np.ndarray, prefix: str = "") -> dict:
    """``{prefix}{head}_top1`` and ``_top5`` per head; with two heads also ``{prefix}action_top1`` (both
    heads right at the joint arg-max) and ``{prefix}action_top5`` (recall of the top 5 verb x noun pairs).
    One head: ``{prefix}top1`` / ``top5`` as before."""
    probs, labels = np.asarray(probs), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("metrics of an empty split")
    per_head, truth = task.split(probs), task.decode(labels)
    if len(task.heads) == 1:
        (name, size), = task.heads
        return {f"{prefix}top1": float(topk_hits(probs, labels, 1).mean()),
                f"{prefix}top5": float(topk_hits(probs, labels, min(5, size)).mean())}
    out = {}
    for name, size in task.heads:
        out[f"{prefix}{name}_top1"] = float(topk_hits(per_head[name], truth[name], 1).mean())
        out[f"{prefix}{name}_top5"] = float(topk_hits(per_head[name], truth[name], min(5, size)).mean())
    args = (per_head["verb"], per_head["noun"], truth["verb"], truth["noun"])
    out[f"{prefix}action_top1"] = float(action_topk_hits(*args, 1).mean())
    out[f"{prefix}action_top5"] = float(action_topk_hits(*args, 5).mean())
    return out
