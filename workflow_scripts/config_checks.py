"""Checks of a schema-valid config against the disk, run when the graph is built (before any job).

Each error names the config key and the file at fault.
"""

from __future__ import annotations

from pathlib import Path

from workflow_scripts.members import ConfigError, parse_member_id

CHALLENGE_FILES = ("train.csv", "val.csv", "test.csv")
FRAMES = ("frames.zip", "frames")


def challenge_data_files(config: dict) -> dict[str, Path]:
    """The challenge data files by name (``frames`` is the zip or the extracted folder); errors name the key."""
    raw = config["data"].get("challenge", {}).get("dir")
    if not raw:
        raise ConfigError("data.challenge.dir: required when data.source is 'challenge'")
    folder = Path(raw)
    if not folder.is_dir():
        raise ConfigError(f"data.challenge.dir: folder {folder} does not exist")
    files = {name: folder / name for name in CHALLENGE_FILES}
    frames = [folder / f for f in FRAMES if (folder / f).exists()]
    if not frames:
        raise ConfigError(f"data.challenge.dir: {folder} holds neither frames.zip nor frames/")
    files["frames"] = frames[0]
    for name, path in files.items():
        if not path.exists():
            raise ConfigError(f"data.challenge.dir: missing {path}")
    return files


def read_member_ids(path: str | Path, key: str) -> list[str]:
    """Ids of a member-list file (``#`` comments, blank lines ignored); each must match a finetune rule."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}: member list {path} does not exist")
    ids = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            parse_member_id(text)
        except ConfigError as err:
            raise ConfigError(f"{key}: {path}:{number}: {err}") from None
        ids.append(text)
    if not ids:
        raise ConfigError(f"{key}: member list {path} names no member")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{key}: member list {path} names a member twice")
    return ids


def existing_cache_files(cache_dir: str | Path, ids: list[str], fits_splits: list[tuple[str, str]], key: str) -> list[Path]:
    """The cache files the ensemble needs from an existing cache folder; error names the first missing one."""
    paths = [Path(cache_dir) / member / f"{fit}-{split}.npz" for member in ids for fit, split in fits_splits]
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{key}: missing probability cache {path}")
    return paths
