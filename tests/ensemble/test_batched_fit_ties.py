"""Early stopping on the probe error: equal error counts are ties, whatever float rounding says."""

from __future__ import annotations

import numpy as np
import torch

from whatnext.ensemble.batched_fit import FitConfig, fit_batched, probe_score

NUM_PROBE, NUM_ERRORS, NUM_CLASSES = 1000, 137, 3


def error_patterns_whose_float32_sums_differ() -> tuple[np.ndarray, np.ndarray]:
    """Two bool [NUM_PROBE] patterns with NUM_ERRORS errors each whose float32 sums of copies of 1/n differ,
    the first larger (found by search: which pairs differ depends on torch's summation order)."""
    weight = torch.full((NUM_PROBE,), 1.0 / NUM_PROBE)
    rng = np.random.default_rng(0)
    patterns = [np.isin(np.arange(NUM_PROBE), rng.choice(NUM_PROBE, NUM_ERRORS, replace=False)) for _ in range(200)]
    sums = [float((torch.as_tensor(p, dtype=torch.float32) * weight).sum()) for p in patterns]
    high, low = int(np.argmax(sums)), int(np.argmin(sums))
    assert sums[high] > sums[low], "no two patterns of equal count rounded differently; the test proves nothing"
    return patterns[high], patterns[low]


def logits_for(wrong: np.ndarray, labels: np.ndarray) -> torch.Tensor:
    """[1, n, C] logits predicting the label except where ``wrong``."""
    predicted = np.where(wrong, (labels + 1) % NUM_CLASSES, labels)
    return torch.nn.functional.one_hot(torch.as_tensor(predicted), NUM_CLASSES).float()[None] * 5.0


def test_equal_error_counts_score_exactly_equal():
    first, second = error_patterns_whose_float32_sums_differ()
    labels = torch.zeros(NUM_PROBE, dtype=torch.int64)
    mask = torch.ones(1, NUM_PROBE, dtype=torch.bool)
    scores = [probe_score(logits_for(p, labels.numpy()), torch.zeros(1, NUM_PROBE), labels, mask, "error") for p in (first, second)]
    assert scores[0].item() == scores[1].item() == NUM_ERRORS / NUM_PROBE


def test_a_tied_later_step_does_not_move_the_chosen_step():
    """Step 0 and step 1 make the same number of probe errors, at different clips, then it gets worse:
    the fold keeps step 0 (strict improvement only)."""
    first, second = error_patterns_whose_float32_sums_differ()
    labels = np.zeros(NUM_PROBE, dtype=np.int64)
    worse = np.arange(NUM_PROBE) < NUM_ERRORS + 50
    schedule = [logits_for(first, labels), logits_for(second, labels)] + [logits_for(worse, labels)] * 10
    calls = []

    def logits_fn(params):
        calls.append(None)
        return schedule[len(calls) - 1] + 0.0 * params["w"].sum()

    fit = fit_batched(
        {"w": torch.zeros(1, 1)},
        logits_fn,
        lambda params: params["w"].pow(2).sum(dim=1),
        labels,
        train_mask=np.ones((1, NUM_PROBE), dtype=bool),
        probe_mask=np.ones((1, NUM_PROBE), dtype=bool),
        config=FitConfig(max_steps=8, patience=5),
    )
    assert fit.best_step.tolist() == [0]
    assert fit.best_probe_loss.tolist() == [NUM_ERRORS / NUM_PROBE]
