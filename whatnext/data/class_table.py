"""The challenge's class table: names, clip counts and the structural pairs.

The table ships inside the package (``whatnext/data/challenge_classes.csv``,
columns ``id,name,train_clips,val_clips,mirror_of,reverse_of,real_action_of``);
a different table can be passed by path. Every pair used anywhere in whatnext
(label-aware flip, TTA swap-back, generator, error decomposition) comes from here, and so do the
clip counts per split of the generated data at a scale (:func:`class_counts`; also read by the
workflow's time limits, which must not import the generator).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

TEST_CLIPS = 6912  # clips of the challenge's test split
REQUIRED_COLUMNS = ("id", "name", "train_clips", "val_clips", "mirror_of", "reverse_of", "real_action_of")


@dataclass(frozen=True)
class ClassTable:
    """The classes, indexed 0..num_classes-1."""

    names: tuple[str, ...]
    train_clips: tuple[int, ...]
    val_clips: tuple[int, ...]
    mirror_of: tuple[int | None, ...]
    reverse_of: tuple[int | None, ...]
    real_action_of: tuple[int | None, ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def empty_classes(self) -> tuple[int, ...]:
        """Classes with no training clip (27 in the challenge)."""
        return tuple(c for c, n in enumerate(self.train_clips) if n == 0)

    def mirror_permutation(self) -> list[int]:
        """perm[c] is the class a horizontal flip turns class c into (identity where no mirror)."""
        return [c if m is None else m for c, m in enumerate(self.mirror_of)]

    @staticmethod
    def _pairs(partner: tuple[int | None, ...]) -> tuple[tuple[int, int], ...]:
        return tuple(sorted({tuple(sorted((c, p))) for c, p in enumerate(partner) if p is not None}))

    @property
    def mirror_pairs(self) -> tuple[tuple[int, int], ...]:
        """Unordered left/right pairs, e.g. ((18, 19),)."""
        return self._pairs(self.mirror_of)

    @property
    def reverse_pairs(self) -> tuple[tuple[int, int], ...]:
        """Unordered time-reversal pairs; a self-reverse class appears as (c, c)."""
        return self._pairs(self.reverse_of)

    @property
    def pretend_pairs(self) -> tuple[tuple[int, int], ...]:
        """(pretending class, real action class) pairs, ordered as written."""
        return tuple((c, r) for c, r in enumerate(self.real_action_of) if r is not None)


def _optional_int(text: str, path: Path, row: int, column: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}: row {row}: column {column!r} is not an integer: {text!r}") from None


def load_class_table(path: str | Path | None = None) -> ClassTable:
    """Read and validate a class table; ``None`` reads the one shipped with the package."""
    if path is None:
        return _packaged_table()
    return _read_table(Path(path))


@lru_cache(maxsize=1)
def _packaged_table() -> ClassTable:
    return _read_table(Path(str(resources.files("whatnext.data") / "challenge_classes.csv")))


def _read_table(path: Path) -> ClassTable:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        rows = list(reader)
    for expected, row in enumerate(rows):
        if int(row["id"]) != expected:
            raise ValueError(f"{path}: row {expected + 1}: ids must run 0..N-1 in order, found {row['id']}")
    n = len(rows)

    def column(name: str) -> tuple[int | None, ...]:
        values = tuple(_optional_int(r[name], path, i + 1, name) for i, r in enumerate(rows))
        for i, v in enumerate(values):
            if v is not None and not 0 <= v < n:
                raise ValueError(f"{path}: row {i + 1}: {name}={v} is not a class id")
        return values

    table = ClassTable(
        names=tuple(r["name"] for r in rows),
        train_clips=tuple(int(r["train_clips"]) for r in rows),
        val_clips=tuple(int(r["val_clips"]) for r in rows),
        mirror_of=column("mirror_of"),
        reverse_of=column("reverse_of"),
        real_action_of=column("real_action_of"),
    )
    for c, m in enumerate(table.mirror_of):
        if m is not None and table.mirror_of[m] != c:
            raise ValueError(f"{path}: mirror_of is not symmetric between classes {c} and {m}")
    return table


def class_counts(table: ClassTable, scale: float) -> dict[str, list[int]]:
    """Clips per class of each split of the generated data at ``scale``: ``round(scale * count)`` of the
    table's train / val counts (at least 1 for a populated class); ``round(TEST_CLIPS * scale)`` test
    clips spread like the validation split (largest remainders, ties to the lower class id)."""

    def scaled(counts: tuple[int, ...]) -> list[int]:
        return [0 if n == 0 else max(1, round(scale * n)) for n in counts]

    total_test = round(TEST_CLIPS * scale)
    quota = [n / sum(table.val_clips) * total_test for n in table.val_clips]
    test = [math.floor(q) for q in quota]
    by_remainder = sorted(range(len(quota)), key=lambda c: -(quota[c] - test[c]))  # stable
    for c in by_remainder[: total_test - sum(test)]:
        test[c] += 1
    return {"train": scaled(table.train_clips), "val": scaled(table.val_clips), "test": test}
