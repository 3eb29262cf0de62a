"""Per-member probability caches: the contract between inference and the ensemble.

Layout: ``{cache_dir}/{member}/{fit}-{split}.npz`` with a provenance sidecar
``{cache_dir}/{member}/{fit}-{split}.json``, where ``fit`` is ``train`` (validation
held out) or ``trainval`` (the sidecar twin) and ``split`` is ``val`` or ``test``.

The ``.npz`` holds ``ids`` (unicode array [n]) and ``probs`` (float32 [n, num_classes],
rows summing to 1). A task of several label heads (:mod:`whatnext.tasks`, EPIC's verb + noun) adds
``head_sizes`` (int64 [H]): ``probs`` holds the heads' blocks side by side, and each block's rows sum to 1. It never needs pickle. Readers validate everything and raise
:class:`ProbCacheError` naming the file at fault. Ids are normalised here, in one place, for
every reader: integer ids (a cache written by other code) become their decimal strings,
bytes ids are decoded as UTF-8; any other dtype is refused. A provenance sidecar that is not
a JSON object is refused too, naming the sidecar.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from whatnext.runtime.atomic import atomic_path, write_json

FITS = ("train", "trainval")
SPLITS = ("val", "test")
ROW_SUM_TOLERANCE = 1e-3


class ProbCacheError(ValueError):
    """A probability cache that is missing, malformed or does not match what was expected.

    ``reason`` is a short category from :data:`ERROR_REASONS`, so that callers (the
    ensemble) can report why a member was skipped without parsing the message.
    """

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


ERROR_REASONS = (
    "missing cache",
    "unreadable",
    "wrong dtype",
    "wrong shape",
    "duplicate ids",
    "non-finite",
    "negative",
    "not normalised",
    "id mismatch",
    "unreadable provenance",
)


@dataclass
class ProbCache:
    """One member's probabilities on one split."""

    ids: np.ndarray  # unicode [n]
    probs: np.ndarray  # float32 [n, num_classes]
    provenance: dict = field(default_factory=dict)


def cache_path(cache_dir: str | Path, member: str, fit: str, split: str) -> Path:
    """Where member ``member`` trained on ``fit`` caches its ``split`` probabilities."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(cache_dir) / member / f"{fit}-{split}.npz"


def validate_probs(ids: np.ndarray, probs: np.ndarray, where: str, num_classes: int | None = None,
                   head_sizes: np.ndarray | None = None) -> None:
    """Raise ProbCacheError unless ids are unique strings and probs are finite normalised rows (per head
    block of ``head_sizes``, when given)."""
    if probs.ndim != 2:
        raise ProbCacheError(f"{where}: probs must be 2-D [clips, classes], got shape {probs.shape}", "wrong shape")
    if num_classes is not None and probs.shape[1] != num_classes:
        raise ProbCacheError(f"{where}: expected {num_classes} classes, got shape {probs.shape}", "wrong shape")
    if ids.ndim != 1 or len(ids) != probs.shape[0]:
        raise ProbCacheError(f"{where}: {len(ids)} ids for {probs.shape[0]} probability rows", "wrong shape")
    if len(np.unique(ids)) != len(ids):
        raise ProbCacheError(f"{where}: duplicate clip ids", "duplicate ids")
    finite = np.isfinite(probs).all(axis=1)
    if not finite.all():
        raise ProbCacheError(f"{where}: non-finite probabilities for clip {str(ids[~finite][0])!r}", "non-finite")
    if (probs < 0).any():
        bad = str(ids[(probs < 0).any(axis=1)][0])
        raise ProbCacheError(f"{where}: negative probability for clip {bad!r}", "negative")
    if head_sizes is not None and int(np.sum(head_sizes)) != probs.shape[1]:
        raise ProbCacheError(f"{where}: head sizes {list(head_sizes)} do not add up to {probs.shape[1]} columns", "wrong shape")
    edges = np.cumsum([0, *(probs.shape[1:] if head_sizes is None else head_sizes)])
    for a, b in zip(edges[:-1], edges[1:]):
        sums = probs[:, a:b].sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
        if off.any():
            i = int(np.argmax(off))
            block = "" if head_sizes is None else f" in columns {a}..{b - 1}"
            raise ProbCacheError(f"{where}: probabilities of clip {str(ids[i])!r}{block} sum to {sums[i]:.6f}, not 1", "not normalised")


def write_prob_cache(path: str | Path, ids, probs, provenance: dict, head_sizes=None) -> None:
    """Validate and write a cache and its JSON provenance, each atomically (npz last); ``head_sizes``: the
    task's head sizes when it has several (whatnext: None, the file is as it always was)."""
    path = Path(path)
    ids = np.asarray([str(i) for i in ids])
    probs = np.asarray(probs, dtype=np.float32)
    heads = None if head_sizes is None else np.asarray(head_sizes, dtype=np.int64)
    validate_probs(ids, probs, str(path), head_sizes=heads)
    extra = {} if heads is None else {"head_sizes": heads.tolist()}
    write_json(path.with_suffix(".json"), {**provenance, "num_clips": len(ids), "num_classes": probs.shape[1], **extra})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=ids, probs=probs, **({} if heads is None else {"head_sizes": heads}))


def read_prob_cache(path: str | Path, num_classes: int | None = None, expected_ids=None) -> ProbCache:
    """Read and validate a cache; with ``expected_ids`` the clip order must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise ProbCacheError(f"{path}: missing probability cache", "missing cache")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, probs = data["ids"], data["probs"]
            head_sizes = data["head_sizes"] if "head_sizes" in data.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ProbCacheError(f"{path}: unreadable probability cache ({err})", "unreadable") from None
    if probs.dtype != np.float32:
        raise ProbCacheError(f"{path}: probs must be float32, got {probs.dtype}", "wrong dtype")
    ids = string_ids(ids, str(path))
    validate_probs(ids, probs, str(path), num_classes, head_sizes)
    if expected_ids is not None:
        expected_ids = np.asarray(expected_ids)
        if len(expected_ids) != len(ids) or not np.array_equal(expected_ids, ids):
            missing = np.setdiff1d(expected_ids, ids)
            detail = f"missing clip {str(missing[0])!r}" if len(missing) else "clip ids in another order or extra"
            raise ProbCacheError(f"{path}: ids do not match the reference ({detail})", "id mismatch")
    return ProbCache(ids=ids, probs=probs, provenance=read_provenance(path.with_suffix(".json")))


def string_ids(ids: np.ndarray, where: str) -> np.ndarray:
    """Clip ids as unicode [n]: strings kept, integers as decimal strings, bytes decoded as UTF-8.

    Any other dtype (floats, booleans) raises ProbCacheError naming ``where``: such ids would pass a
    set comparison with the CSV's strings after NumPy's coercion and then fail a dict lookup.
    """
    if ids.dtype.kind == "U":
        return ids
    if ids.dtype.kind in "iu":
        return ids.astype(str)
    if ids.dtype.kind == "S":
        try:
            return np.char.decode(ids, "utf-8")
        except UnicodeDecodeError as err:
            raise ProbCacheError(f"{where}: clip ids are bytes that are not UTF-8 ({err})", "wrong dtype") from None
    raise ProbCacheError(f"{where}: clip ids must be strings or integers, got dtype {ids.dtype}", "wrong dtype")


def read_provenance(path: Path) -> dict:
    """The JSON object of a cache's provenance sidecar; {} when there is none. Raises ProbCacheError naming
    the sidecar when it is unreadable, not JSON, or not an object."""
    if not path.is_file():
        return {}
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProbCacheError(f"{path}: unreadable provenance sidecar ({err})", "unreadable provenance") from None
    if not isinstance(provenance, dict):
        raise ProbCacheError(f"{path}: provenance sidecar must be a JSON object, got {type(provenance).__name__}", "unreadable provenance")
    return provenance
