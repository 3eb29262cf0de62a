"""The shared trainer: data order, schedule, exact resume, deadline and signal stops."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch.utils.data import Dataset

from whatnext.runtime.trainer import (
    STATE_FILE,
    STOP_AFTER_STEPS_ENV,
    EpochSeededItems,
    ResumeStateError,
    Trainer,
    TrainingIncomplete,
    TrainOptions,
    epoch_batches,
    epoch_order,
    warmup_cosine,
)


class NoisyPoints(Dataset):
    """20 points (x, y = 3x + 1), x jittered by torch's RNG at read time (an 'augmentation')."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        x = torch.full((2,), float(i) / 20) + 0.01 * torch.randn(2)
        return x, 3 * x.sum(0, keepdim=True) + 1


class DropoutRegressor(torch.nn.Module):
    """Linear model with dropout, so each step also draws from the global RNG."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.drop = torch.nn.Dropout(0.2)

    def forward(self, x):
        return self.linear(self.drop(x))


def mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def make_trainer(tmp_path, **overrides):
    torch.manual_seed(0)
    options = TrainOptions(**({"seed": 3, "max_epochs": 3, "batch_size": 6, "lr": 0.05, "warmup_epochs": 1.0,
                               "resume_dir": tmp_path / "resume", "checkpoint_every": 2, "safety_margin_min": 0.0} | overrides))
    return Trainer(DropoutRegressor(), NoisyPoints(), mse, options, fingerprint={"task": "toy"})


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    assert epoch_order(50, seed=1, epoch=2) == epoch_order(50, seed=1, epoch=2)
    assert sorted(epoch_order(50, 1, 2)) == list(range(50))
    assert epoch_order(50, 1, 2) != epoch_order(50, 1, 3)
    assert epoch_order(50, 1, 2) != epoch_order(50, 2, 2)


def test_epoch_batches_cover_every_item_once_and_drop_last_drops_the_remainder():
    batches = epoch_batches(10, 4, seed=0, epoch=0, drop_last=False)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert [len(b) for b in epoch_batches(10, 4, 0, 0, drop_last=True)] == [4, 4]


def test_seeded_items_repeat_their_augmentation_and_leave_the_global_rng_alone():
    items = EpochSeededItems(NoisyPoints(), seed=5)
    before = torch.get_rng_state()
    first = items[(1, 7)][0]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(items[(1, 7)][0], first)
    assert not torch.equal(items[(2, 7)][0], first)


def test_warmup_rises_linearly_then_cosine_ends_at_min_ratio():
    factor = warmup_cosine(warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [factor(s) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert factor(4) == pytest.approx(1.0)
    assert factor(9) == pytest.approx(0.1 + 0.9 * 0.5)
    assert factor(14) == pytest.approx(0.1)


def test_scheduler_sets_the_optimiser_lr_per_step(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=2, warmup_epochs=1.0)  # 4 steps/epoch, 4 warmup steps
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 1 / 5)
    trainer.fit()
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(0.0)


def test_biases_get_no_weight_decay(tmp_path):
    trainer = make_trainer(tmp_path)
    decay, no_decay = trainer.optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and [p.shape for p in decay["params"]] == [torch.Size([1, 2])]
    assert no_decay["weight_decay"] == 0.0 and [p.shape for p in no_decay["params"]] == [torch.Size([1])]


def test_fit_lowers_the_loss_and_records_one_metrics_row_per_epoch(tmp_path):
    result = make_trainer(tmp_path, max_epochs=6).fit()
    assert [r["epoch"] for r in result.history] == list(range(6))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.steps == 6 * 4
    assert set(result.history[0]) >= {"loss", "lr", "clips_per_s"}


def test_same_seed_gives_identical_weights(tmp_path):
    a = make_trainer(tmp_path / "a")
    a.fit()
    b = make_trainer(tmp_path / "b")
    b.fit()
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key])


def fit_through_stops(make_run) -> tuple[Trainer, object, list[int]]:
    """Build a trainer with ``make_run()``, resume and fit it until a fit completes (the injected stops of
    ``STOP_AFTER_STEPS_ENV`` raise TrainingIncomplete); returns (last trainer, its result, the stop steps)."""
    stops = []
    while True:
        trainer = make_run()
        trainer.resume_if_possible()
        try:
            return trainer, trainer.fit(), stops
        except TrainingIncomplete as stop:
            stops.append(stop.step)


def test_resume_after_injected_stops_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path, monkeypatch):
    reference = make_trainer(tmp_path / "ref", resume_dir=None)
    ref_result = reference.fit()
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "5")  # 12 steps: stops at 5 and 10 (mid-epoch both times)
    trainer, result, stops = fit_through_stops(lambda: make_trainer(tmp_path))
    assert stops == [5, 10]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[key]), key
    assert [r["loss"] for r in result.history] == [r["loss"] for r in ref_result.history]


def test_stop_saves_state_in_resume_dir_and_success_cleanup_removes_it(tmp_path, monkeypatch):
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "3")
    with pytest.raises(TrainingIncomplete) as stop:
        make_trainer(tmp_path).fit()
    assert stop.value.state_path == tmp_path / "resume" / STATE_FILE and stop.value.state_path.is_file()
    monkeypatch.delenv(STOP_AFTER_STEPS_ENV)
    trainer = make_trainer(tmp_path)
    assert trainer.resume_if_possible() and trainer.step == 3
    trainer.fit()
    trainer.clear_resume_state()
    assert not (tmp_path / "resume").exists()


def test_resume_state_of_another_configuration_is_refused_naming_the_difference(tmp_path, monkeypatch):
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "3")
    with pytest.raises(TrainingIncomplete):
        make_trainer(tmp_path).fit()
    with pytest.raises(ResumeStateError, match=r"trainer_state.pt.*differs in: options.lr"):
        make_trainer(tmp_path, lr=0.01).resume_if_possible()


def test_truncated_resume_state_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "resume" / STATE_FILE
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(ResumeStateError, match="trainer_state.pt: unreadable or truncated resume state"):
        make_trainer(tmp_path).resume_if_possible()


class FakeClock:
    """Unix time that advances only when a step runs."""

    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_time_budget_stops_before_the_step_that_would_cross_it(tmp_path):
    clock = FakeClock()

    def slow_mse(model, batch):
        clock.now += 10.0  # every step takes 10 s
        return mse(model, batch)

    options = TrainOptions(seed=3, max_epochs=3, batch_size=6, lr=0.05, resume_dir=tmp_path / "r",
                           checkpoint_every=100, time_budget_min=1.0, safety_margin_min=0.0)
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), slow_mse, options, clock=clock)
    with pytest.raises(TrainingIncomplete, match="deadline") as stop:
        trainer.fit()
    # 60 s budget, 10 s steps, checkpoint estimated at one step until measured: after 4 steps
    # 20 s are left and a step plus a checkpoint needs 20 s, so it stops there.
    assert stop.value.step == 4
    assert (tmp_path / "r" / STATE_FILE).is_file()


def test_stop_signal_checkpoints_at_the_next_step_boundary(tmp_path):
    calls = []

    def signalling_mse(model, batch):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGUSR1)
        return mse(model, batch)

    options = TrainOptions(seed=3, max_epochs=3, batch_size=6, lr=0.05, resume_dir=tmp_path / "r")
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), signalling_mse, options)
    with pytest.raises(TrainingIncomplete, match=f"signal {int(signal.SIGUSR1)}") as stop:
        trainer.fit()
    assert stop.value.step == 2
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_on_epoch_end_fields_join_the_epoch_record(tmp_path):
    options = TrainOptions(seed=3, max_epochs=2, batch_size=6, lr=0.05)
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), mse, options, on_epoch_end=lambda e, rec: {"val_acc": 0.5 + e})
    result = trainer.fit()
    assert [r["val_acc"] for r in result.history] == [0.5, 1.5]


def test_non_finite_loss_raises_naming_the_step(tmp_path):
    options = TrainOptions(seed=3, max_epochs=1, batch_size=6)
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), lambda m, b: mse(m, b) * float("nan"), options)
    with pytest.raises(FloatingPointError, match="at step 0"):
        trainer.fit()


def test_worker_processes_do_not_change_the_result(tmp_path):
    single = make_trainer(tmp_path / "a", resume_dir=None, max_epochs=2)
    single.fit()
    parallel = make_trainer(tmp_path / "b", resume_dir=None, max_epochs=2, workers=2)
    parallel.fit()
    for key, value in single.model.state_dict().items():
        assert torch.equal(value, parallel.model.state_dict()[key]), key


def test_safety_margin_longer_than_the_time_left_is_named_with_the_flag_to_lower(tmp_path):
    with pytest.raises(TrainingIncomplete) as stop:
        make_trainer(tmp_path, time_budget_min=1.0, safety_margin_min=5.0).fit()
    assert stop.value.step == 0
    assert "safety margin (5 min) is longer than the 1 min that were left; lower --safety-margin-min" in str(stop.value)


def test_a_deadline_reached_in_training_keeps_the_plain_reason(tmp_path):
    with pytest.raises(TrainingIncomplete, match=r"\(deadline\); state saved"):
        make_trainer(tmp_path, time_budget_min=0.0, safety_margin_min=0.0).fit()
