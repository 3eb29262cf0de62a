"""Checks of a schema-valid config, run when the graph is built (before any job): against the disk
(data and cache files) and against the names the package knows (:func:`check_names`: encoders, heads,
SSL methods, the training CLIs' options, from ``workflow_scripts/cli_manifest.json``).

Each error names the config key and the file or name at fault.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from workflow_scripts.cli_manifest import FINETUNE_CLI, ssl_cli
from workflow_scripts.member_table import ConfigError, parse_member_id

CHALLENGE_FILES = ("train.csv", "val.csv", "test.csv")
FRAMES = ("frames.zip", "frames")


def challenge_folder(config: dict) -> Path:
    """``data.challenge.dir`` of a config whose data.source is challenge, an existing folder; errors name the key."""
    raw = config["data"].get("challenge", {}).get("dir")
    if not raw:
        raise ConfigError("data.challenge.dir: required when data.source is 'challenge'")
    folder = Path(raw)
    if not folder.is_dir():
        raise ConfigError(f"data.challenge.dir: folder {folder} does not exist")
    return folder


def challenge_data_files(config: dict) -> dict[str, Path]:
    """The challenge data files by name (``frames`` is the zip or the extracted folder); errors name the key."""
    folder = challenge_folder(config)
    files = {name: folder / name for name in CHALLENGE_FILES}
    frames = [folder / f for f in FRAMES if (folder / f).exists()]
    if not frames:
        raise ConfigError(f"data.challenge.dir: {folder} holds neither frames.zip nor frames/")
    files["frames"] = frames[0]
    for name, path in files.items():
        if not path.exists():
            raise ConfigError(f"data.challenge.dir: missing {path}")
    return files


EPIC_FILES = ("train.csv", "val.csv", "test.csv", "video_info.csv", "verb_classes.csv", "noun_classes.csv")
EPIC_MEDIA = ("rgb_frames", "videos")


def epic_data_files(config: dict) -> dict[str, Path]:
    """Task epic, data.source challenge: the EPIC annotation files by name (train.csv: EPIC_100_train.csv, ...)
    and the media folders present (rgb_frames/, videos/; at least one); errors name the key."""
    folder = challenge_folder(config)
    files = {name: folder / name for name in EPIC_FILES}
    for path in files.values():
        if not path.exists():
            raise ConfigError(f"data.challenge.dir: missing {path} (task epic)")
    media = [folder / name for name in EPIC_MEDIA if (folder / name).is_dir()]
    if not media:
        raise ConfigError(f"data.challenge.dir: {folder} holds neither rgb_frames/ nor videos/ (task epic)")
    return files | {name.name: name for name in media}


def check_epic_graph(config: dict) -> None:
    """What the epic task's graph has no place for: pseudo-label rounds and train+val twins (no sidecar)."""
    if config.get("twins"):
        raise ConfigError("twins: the epic task stacks its members' own test caches (no sidecar); set twins: false")
    rounds = (config.get("members", {}).get("cascade") or {}).get("rounds", [0])
    if any(r > 0 for r in rounds):
        raise ConfigError(f"members.cascade.rounds: the epic task has no pseudo-label rounds, got {rounds}")


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


def _unknown(key: str, name: str, what: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{key}: {name!r} is not {what}{hint} (known: {', '.join(sorted(known))})")


def _check_options(key: str, layer: dict | None, clis: list[str], manifest: dict) -> None:
    """Every ``options`` name of a training-settings layer must be a flag of every CLI the layer reaches, and
    not ``micro-batch``: the rules pass that one from the retry policy (the ``micro_batch`` resource)."""
    for name in sorted(((layer or {}).get("options") or {})):
        if name == "micro-batch":
            raise ConfigError(f"{key}.options: micro-batch is the workflow's (halved on the retry after a CUDA "
                              "out-of-memory error); set the micro_batch resource of the rule in a profile instead")
        for cli in clis:
            known = manifest["cli_options"][cli]
            if name not in known:
                raise _unknown(f"{key}.options", name, f"an option of python -m {cli}", known)


def _check_masking(family: str, section: dict, manifest: dict) -> None:
    """``ssl.F.masking`` needs a method whose CLI has --masking (the masked autoencoders), and is set there,
    not through ``train.options`` (which would pass the flag twice)."""
    options = (section.get("train") or {}).get("options") or {}
    if "masking" in options:
        raise ConfigError(f"ssl.{family}.train.options: set the masking with ssl.{family}.masking, not as an option")
    masking = section.get("masking", "random")
    if masking != "random" and "masking" not in manifest["cli_options"][ssl_cli(section["method"])]:
        raise ConfigError(f"ssl.{family}.masking: {masking!r} needs a masked-autoencoder method (mae2d, videomae); "
                          f"method {section['method']!r} masks no tokens")


def check_names(config: dict, manifest: dict) -> None:
    """Raise ConfigError naming the key of the first head, encoder, SSL method or training option the
    package does not know (``manifest``: :func:`workflow_scripts.cli_manifest.load_manifest`)."""
    encoders, heads = manifest["encoders"], manifest["heads"]
    ssl = config.get("ssl") or {}
    for family, section in ssl.items():
        if section["method"] not in manifest["ssl_methods"]:
            raise _unknown(f"ssl.{family}.method", section["method"], "an SSL method", manifest["ssl_methods"])
        if section["arch"] not in encoders:
            raise _unknown(f"ssl.{family}.arch", section["arch"], "a registered encoder", encoders)
        _check_options(f"ssl.{family}.train", section.get("train"), [ssl_cli(section["method"])], manifest)
        _check_masking(family, section, manifest)
    members = {family: section for family, section in (config.get("members") or {}).items() if section}
    every_cli = sorted({ssl_cli(s["method"]) for s in ssl.values()} | {FINETUNE_CLI[f] for f in members})
    _check_options("train", config.get("train"), every_cli, manifest)
    for family, section in members.items():
        cli = [FINETUNE_CLI[family]]
        key = f"members.{family}"
        _check_options(f"{key}.train", section.get("train"), cli, manifest)
        for head in section.get("heads", []):
            if head not in heads:
                raise _unknown(f"{key}.heads", head, "a registered head", heads)
        for member_id, override in (section.get("overrides") or {}).items():
            _check_options(f"{key}.overrides.{member_id}", override, cli, manifest)
        for name, variant in (section.get("variants") or {}).items():
            if variant["head"] not in heads:
                raise _unknown(f"{key}.variants.{name}.head", variant["head"], "a registered head", heads)
            if family == "scratch" and variant["arch"] not in encoders:
                raise _unknown(f"{key}.variants.{name}.arch", variant["arch"], "a registered encoder", encoders)
            _check_options(f"{key}.variants.{name}.train", variant.get("train"), cli, manifest)
