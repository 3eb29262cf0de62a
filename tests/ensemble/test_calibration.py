"""Temperature scaling, linear and MLP baselines, and the metrics they are compared on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from whatnext.ensemble.batched_fit import FitConfig
from whatnext.ensemble.calibration import compare, fit_temperature, main
from whatnext.ensemble.nested_cv import make_nested_folds
from whatnext.ensemble.scoring import expected_calibration_error
from whatnext.ensemble.synthetic_members import generate_members

FAST = FitConfig(max_steps=60, patience=15)


def test_ece_of_a_hand_made_example():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])  # bin 0.9: accuracy 0.5; bin 0.6: accuracy 1.0
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_temperature_recovers_the_overconfidence_factor():
    rng = np.random.default_rng(0)
    calibrated = torch.as_tensor(rng.normal(0, 2, size=(1200, 5)), dtype=torch.float32)
    labels = torch.multinomial(torch.softmax(calibrated, dim=-1), 1, generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    folds = make_nested_folds(labels, 3, seed=0)
    temperature = fit_temperature((3 * calibrated).expand(3, -1, -1), labels, folds)
    np.testing.assert_allclose(temperature.numpy(), 3.0, rtol=0.15)


@pytest.fixture(scope="module")
def comparison():
    torch.set_num_threads(1)
    strength = np.full((3, 33), 0.5, dtype=np.float32)
    for i in range(3):
        strength[i, i::3] = 4.0
    members = generate_members(strength, 600, seed=0)
    folds = make_nested_folds(members.labels, 4, seed=0)
    return compare(members.probs, members.labels, folds, FAST, FitConfig(lr=0.01, max_steps=60, patience=15, penalty=1e-3)).set_index("method")


def test_comparison_has_every_method_with_scores_in_range(comparison):
    assert list(comparison.index) == ["mean_log_probs", "mean_log_probs + temperature", "stacker", "stacker + temperature", "linear", "mlp"]
    assert comparison["accuracy_mean"].between(0, 1).all() and comparison["ece_mean"].between(0, 1).all()
    assert (comparison["nll_mean"] > 0).all()


def test_temperature_keeps_accuracy_and_lowers_held_out_nll_of_the_stacker(comparison):
    assert comparison.loc["stacker + temperature", "accuracy_mean"] == comparison.loc["stacker", "accuracy_mean"]
    assert comparison.loc["stacker + temperature", "nll_mean"] < comparison.loc["stacker", "nll_mean"]


def test_cli_writes_the_report_and_markdown_table(specialist_pool):
    root = specialist_pool["root"]
    result = CliRunner().invoke(main, ["--cache-dir", str(specialist_pool["cache"]), "--members", str(specialist_pool["member_list"]),
                                       "--data", str(specialist_pool["data"]), "--report", str(root / "cal.json"),
                                       "--table", str(root / "cal.md"), "--folds", "3", "--max-steps", "30"])
    assert result.exit_code == 0, result.output
    methods = [m["method"] for m in json.loads((root / "cal.json").read_text())["methods"]]
    assert "linear" in methods and "mlp" in methods
    assert (root / "cal.md").read_text().startswith("| method | held-out accuracy | NLL (nats) | ECE |")
