"""Nested folds: held-out clips are never in their fold's train or probe split."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.ensemble.nested_cv import make_nested_folds


@pytest.fixture
def labels():
    return np.random.default_rng(0).integers(0, 7, size=503)


def test_every_clip_is_held_out_by_exactly_one_fold(labels):
    folds = make_nested_folds(labels, 15, seed=0)
    np.testing.assert_array_equal(folds.held_out().sum(axis=0), np.ones(len(labels)))


def test_train_probe_and_held_out_are_disjoint_and_cover_every_clip(labels):
    folds = make_nested_folds(labels, 15, seed=0)
    train, probe, held_out = folds.train(), folds.probe(), folds.held_out()
    assert not (train & probe).any() and not (train & held_out).any() and not (probe & held_out).any()
    assert (train | probe | held_out).all()


def test_chunks_are_stratified_by_class(labels):
    folds = make_nested_folds(labels, 5, seed=3)
    for c in np.unique(labels):
        per_chunk = np.bincount(folds.chunk[labels == c], minlength=5)
        assert per_chunk.max() - per_chunk.min() <= 1


def test_folds_depend_on_the_seed_alone(labels):
    np.testing.assert_array_equal(make_nested_folds(labels, 15, 1).chunk, make_nested_folds(labels, 15, 1).chunk)
    assert not np.array_equal(make_nested_folds(labels, 15, 1).chunk, make_nested_folds(labels, 15, 2).chunk)


def test_fewer_than_three_folds_is_an_error(labels):
    with pytest.raises(ValueError, match="at least 3 folds"):
        make_nested_folds(labels, 2, seed=0)


def test_every_ensemble_cli_and_the_config_schema_default_to_the_same_folds():
    from pathlib import Path

    import yaml

    from whatnext.analysis import error_decomposition
    from whatnext.ensemble import calibration, pseudo_label, sidecar, stacker
    from whatnext.ensemble.nested_cv import DEFAULT_FOLDS

    defaults = {cli.__name__: next(p.default for p in cli.main.params if p.name == "num_folds")
                for cli in (stacker, sidecar, calibration, pseudo_label, error_decomposition)}
    assert defaults == dict.fromkeys(defaults, DEFAULT_FOLDS)
    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["ensemble"]["properties"]["folds"]["default"] == DEFAULT_FOLDS
