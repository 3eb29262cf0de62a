"""Merging of training-settings layers and their rendering as CLI flags."""

from workflow_scripts.training_settings import job_seed, merge_settings, render_flags


def test_later_layer_wins_key_by_key_and_options_merge():
    merged = merge_settings({"max_epochs": 2, "lr": 0.1, "options": {"a": 1}}, None, {"max_epochs": 5, "options": {"b": True}})
    assert merged == {"max_epochs": 5, "lr": 0.1, "options": {"a": 1, "b": True}}


def test_flags_render_in_fixed_order_with_bare_and_repeated_options():
    flags = render_flags({"lr": 0.5, "max_epochs": 3, "options": {"z-flag": True, "aux": ["x", "y"], "off": False}})
    assert flags == "--max-epochs 3 --lr 0.5 --aux x --aux y --z-flag"


def test_job_seed_is_stable_and_differs_between_jobs():
    assert job_seed(0, "a") == job_seed(0, "a")
    assert job_seed(0, "a") != job_seed(0, "b")
    assert job_seed(1, "a") != job_seed(0, "a")
