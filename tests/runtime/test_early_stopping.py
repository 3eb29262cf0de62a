"""Stopping by progress in the trainer: plateau, minimum epochs, best weights kept, exact resume after a kill."""

from __future__ import annotations

import pytest
import torch

from whatnext.runtime.early_stopping import EarlyStopping
from whatnext.runtime.trainer import STOP_AFTER_STEPS_ENV, Trainer, TrainingIncomplete, TrainOptions
from tests.runtime.test_trainer import DropoutRegressor, NoisyPoints, fit_through_stops, mse

STEPS_PER_EPOCH = 4  # 20 points, batches of 6


class ScriptedScore:
    """A stop score that reads ``losses[epoch]`` (the epoch the trainer just closed) and snapshots the weights
    it was asked about, so a test knows which weights belong to which epoch."""

    def __init__(self, losses):
        self.losses, self.trainer, self.weights = losses, None, {}

    def __call__(self, model):
        epoch = self.trainer.step // STEPS_PER_EPOCH - 1
        self.weights[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"stop_loss": self.losses[epoch], "stop_top1": 1.0 - self.losses[epoch]}


def scripted_trainer(tmp_path, losses, monitor="loss", chance=None, **overrides):
    torch.manual_seed(0)
    options = TrainOptions(**({"seed": 3, "max_epochs": len(losses), "batch_size": 6, "lr": 0.05, "warmup_epochs": 1.0,
                               "resume_dir": tmp_path / "resume", "checkpoint_every": 3, "safety_margin_min": 0.0,
                               "patience": 2} | overrides))
    score = ScriptedScore(losses)
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), mse, options, stop_score=score, stop_monitor=monitor,
                      stop_chance=chance)
    score.trainer = trainer
    return trainer, score


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stops_after_patience_epochs_on_a_plateau_and_keeps_the_best_weights(tmp_path):
    trainer, score = scripted_trainer(tmp_path, [1.0, 0.6, 0.5, 0.5, 0.55, 0.4, 0.3, 0.2], patience=2)
    result = trainer.fit()
    # best after epoch 2; epoch 3 ties (no better) and epoch 4 is worse: two epochs without improvement
    assert [r["stop_best_epoch"] for r in result.history] == [0, 1, 2, 2, 2]
    assert result.steps == 5 * STEPS_PER_EPOCH
    assert result.stopping["stopped_early"] and result.stopping["stop_best_epoch"] == 2
    assert same_weights(trainer.model.state_dict(), score.weights[2])
    assert not same_weights(score.weights[2], score.weights[3])


def test_no_stop_before_min_epochs(tmp_path):
    trainer, _ = scripted_trainer(tmp_path, [0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], patience=1, min_epochs=5)
    result = trainer.fit()
    assert len(result.history) == 5 and result.stopping["stopped_early"]


def test_without_patience_it_runs_max_epochs_and_still_restores_the_best(tmp_path):
    trainer, score = scripted_trainer(tmp_path, [0.9, 0.3, 0.8, 0.8, 0.8], patience=None)
    result = trainer.fit()
    assert len(result.history) == 5 and not result.stopping["stopped_early"]
    assert same_weights(trainer.model.state_dict(), score.weights[1])


def test_accuracy_monitor_keeps_the_highest(tmp_path):
    trainer, score = scripted_trainer(tmp_path, [0.9, 0.3, 0.8, 0.8, 0.8], monitor="top1", patience=3)
    result = trainer.fit()
    assert result.stopping["stop_monitor"] == "stop_top1" and result.stopping["stop_best_epoch"] == 1
    assert same_weights(trainer.model.state_dict(), score.weights[1])


# stop_top1 = 1 - loss: with chance 0.4 the model first beats chance at epoch 5
NOT_YET_LEARNING = [1.0, 0.95, 0.97, 0.99, 0.98, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_patience_counts_only_once_the_stop_split_beats_chance(tmp_path):
    ungated, _ = scripted_trainer(tmp_path / "ungated", NOT_YET_LEARNING, patience=2, resume_dir=None)
    assert len(ungated.fit().history) == 4  # a flat loss at chance read as a plateau: best epoch 1, stop after 3
    trainer, score = scripted_trainer(tmp_path, NOT_YET_LEARNING, patience=2, chance=0.4)
    result = trainer.fit()
    # the first epoch above chance becomes the best although its loss (0.5) is not the lowest seen before it
    assert [r["stop_best_epoch"] for r in result.history] == [0, 1, 1, 1, 1, 5, 5, 5]
    assert result.stopping["stopped_early"] and result.stopping["stop_learned_epoch"] == 5
    assert result.stopping["stop_chance_top1"] == 0.4
    assert same_weights(trainer.model.state_dict(), score.weights[5])


def test_a_run_that_never_beats_chance_runs_max_epochs_and_keeps_its_lowest_loss(tmp_path):
    trainer, score = scripted_trainer(tmp_path, [1.0, 0.9, 0.95, 0.97, 0.99, 0.98], patience=1, chance=0.5)
    result = trainer.fit()
    assert len(result.history) == 6 and not result.stopping["stopped_early"]
    assert result.stopping["stop_learned_epoch"] is None
    assert same_weights(trainer.model.state_dict(), score.weights[1])


@pytest.mark.parametrize("losses, chance, epochs", [
    ([1.0, 0.4, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0], None, 5),  # best after epoch 1; patience 3 stops after epoch 4
    (NOT_YET_LEARNING, 0.4, 9),  # learns at epoch 5; patience 3 stops after epoch 8
])
def test_a_run_killed_between_best_and_stop_resumes_to_the_same_stop_and_weights(tmp_path, monkeypatch, losses, chance,
                                                                                 epochs):
    reference, ref_score = scripted_trainer(tmp_path / "ref", losses, patience=3, resume_dir=None, chance=chance)
    ref_result = reference.fit()
    assert len(ref_result.history) == epochs
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "7")  # killed every 7 steps, mid-epoch
    trainer, result, kills = fit_through_stops(lambda: scripted_trainer(tmp_path, losses, patience=3, chance=chance)[0])
    assert kills == list(range(7, epochs * STEPS_PER_EPOCH, 7))
    assert same_weights(trainer.model.state_dict(), reference.model.state_dict())
    assert same_weights(trainer.model.state_dict(), ref_score.weights[ref_result.stopping["stop_best_epoch"]])
    untimed = lambda history: [{k: v for k, v in r.items() if k != "clips_per_s"} for r in history]  # noqa: E731
    assert untimed(result.history) == untimed(ref_result.history)
    assert result.stopping == ref_result.stopping


def test_the_stopping_state_travels_in_the_resume_state(tmp_path, monkeypatch):
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "9")
    trainer, score = scripted_trainer(tmp_path, [1.0, 0.4, 0.7, 0.8, 0.9], patience=3)
    with pytest.raises(TrainingIncomplete):
        trainer.fit()
    state = torch.load(tmp_path / "resume" / "trainer_state.pt", weights_only=True)["stopping"]
    assert (state["best_epoch"], state["since_best"], state["stopped"]) == (1, 0, False)
    assert same_weights(state["best_weights"], score.weights[1])


def test_max_epochs_ends_the_run_whatever_min_epochs_says(tmp_path):
    """min_epochs only delays stopping by progress (a config's shared value may exceed an SSL job's max)."""
    trainer, _ = scripted_trainer(tmp_path, [1.0, 0.5, 0.4], min_epochs=5)
    result = trainer.fit()
    assert len(result.history) == 3 and not result.stopping["stopped_early"]


def test_nan_score_never_counts_as_an_improvement():
    stopper = EarlyStopping(lambda model: {"stop_loss": float("nan")}, patience=1)
    assert not stopper.improves(float("nan"))
    stopper.observe(0, torch.nn.Linear(1, 1))
    assert stopper.best_weights is None and stopper.stopped
