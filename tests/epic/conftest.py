"""Tiny generated EPIC-like data dirs, built once per session (about 1 s each): 1 participant, 3 videos
(train, val, test), 6 segments each, 5 verbs, 6 nouns, 16 px frames; no MP4 (:func:`epic_dir`), or the
train video as an MP4 (:func:`epic_mp4_dir`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY = dict(participants=1, videos=3, segments=6, verbs=5, nouns=6, size=16, mp4=0, seed=0)


@pytest.fixture(scope="session")
def tiny_options() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def epic_dir(tmp_path_factory) -> Path:
    """Read-only: copy it (:func:`epic_copy`) before changing anything."""
    from whatnext.data.epic_synth import generate

    out = tmp_path_factory.mktemp("epic")
    generate(out, **TINY)
    return out


@pytest.fixture
def epic_copy(epic_dir, tmp_path) -> Path:
    target = tmp_path / "epic"
    shutil.copytree(epic_dir, target)
    return target


@pytest.fixture(scope="session")
def epic_mp4_dir(tmp_path_factory) -> Path:
    """Read-only, as :func:`epic_dir` but with ``videos/P01/P01_101.MP4`` instead of its frames."""
    from whatnext.data.epic_synth import generate

    out = tmp_path_factory.mktemp("epic_mp4")
    generate(out, **(TINY | {"mp4": 1}))
    return out
