"""The split CSVs (``train.csv``, ``val.csv``, ``test.csv``) in every form they are read in.

One reader for the clip reader (:mod:`whatnext.data.zip_dataset`) and the ensemble
(:mod:`whatnext.data.clip_labels`), with pandas only (no image or model code). Forms read:

- **columns**: ``video_id``, plus ``label`` for a labelled split; other columns are ignored.
- **ids**: as written, surrounding spaces stripped. ``video_81`` and ``81`` name the same clip, the
  frame folder ``video_81/`` (or ``81/``), and so do integer-looking ids with leading zeros (``0081``):
  :func:`clip_key` is what ids and folders are matched by. Ids are kept as the CSV writes them
  everywhere downstream (probability caches, pseudo-labels); two rows with the same key are an error.
- **labels**: a class id (``10``, or ``10.0`` as pandas writes integers of a column with gaps), a
  class name of the class table (``Opening something``; case and ``_``/space ignored), or the course
  kit's class folder name, ``<zero-padded id>_<name with underscores>`` (``010_Opening_something``),
  whose number must be the named class's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from whatnext.data.class_table import ClassTable

CLIP_PREFIX = "video_"
_INTEGER = re.compile(r"^[0-9]+$")
_CLASS_ID = re.compile(r"^[0-9]+(?:\.0*)?$")
_KIT_FOLDER = re.compile(r"^(?P<id>[0-9]+)_(?P<name>.+)$")


class DataFormatError(ValueError):
    """Input that does not follow the challenge format; the message names the file and clip."""


def clip_key(clip_id: str) -> str:
    """What an id (CSV row or frame folder) is matched by: ``video_`` prefix dropped, integers without
    leading zeros. ``clip_key("video_081") == clip_key("81") == "81"``."""
    text = clip_id.strip()
    if text.lower().startswith(CLIP_PREFIX):
        text = text[len(CLIP_PREFIX):]
    return str(int(text)) if _INTEGER.match(text) else text


def _name_key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


@dataclass(frozen=True)
class LabelParser:
    """Reads a label in any of the forms of the module docstring into a class id in 0..num_classes-1."""

    num_classes: int
    by_name: dict[str, int]

    @classmethod
    def from_table(cls, table: ClassTable, num_classes: int | None = None) -> "LabelParser":
        return cls(num_classes or table.num_classes, {_name_key(name): c for c, name in enumerate(table.names)})

    def __call__(self, text: str) -> int:
        """The class id of ``text``; ValueError saying what is wrong otherwise."""
        label = self._class_of(text.strip())
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} is outside 0..{self.num_classes - 1}")
        return label

    def _class_of(self, text: str) -> int:
        if _CLASS_ID.match(text):
            return int(float(text))
        if _name_key(text) in self.by_name:
            return self.by_name[_name_key(text)]
        folder = _KIT_FOLDER.match(text)
        if folder and _name_key(folder["name"]) in self.by_name:
            label = self.by_name[_name_key(folder["name"])]
            if int(folder["id"]) != label:
                raise ValueError(f"label {text!r}: folder number {int(folder['id'])} is not class {label} ({folder['name']!r})")
            return label
        raise ValueError(f"label {text!r} is neither a class id in 0..{self.num_classes - 1} nor a class name of the class table")


def read_split_csv(path: str | Path, labelled: bool) -> tuple[list[str], list[str]]:
    """The CSV's clip ids (str, as written, in file order) and raw label strings ('' when unlabelled).

    File-level problems (unreadable, missing columns, two rows for one clip) raise ``DataFormatError``
    naming the file.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: cannot read the CSV ({err})") from err
    required = ["video_id", "label"] if labelled else ["video_id"]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: missing columns {missing} (found {list(table.columns)})")
    ids = table["video_id"].str.strip()
    keys = ids.map(clip_key)
    duplicated = list(dict.fromkeys(ids[keys.duplicated(keep=False)]))
    if duplicated:
        raise DataFormatError(f"{path}: duplicate video_id {duplicated[:5]} (rows naming the same clip)")
    labels = table["label"].tolist() if labelled else [""] * len(ids)
    return ids.tolist(), labels
