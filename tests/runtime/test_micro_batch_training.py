"""Gradient accumulation over micro-batches (--micro-batch): the step of the whole batch, and a CUDA
out-of-memory error that names the micro-batch and leaves the checkpoint to resume from."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from whatnext.runtime.trainer import STOP_AFTER_STEPS_ENV, CudaOutOfMemory, Trainer, TrainingIncomplete, TrainOptions
from tests.runtime.test_trainer import fit_through_stops


class Points(Dataset):
    """n fixed points x in R^3, y = x . (1, -2, 3) + 0.5 (no randomness in an item)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.tensor([i / self.n, (i % 5) / 5, ((7 * i) % 11) / 11])
        return x, (x @ torch.tensor([1.0, -2.0, 3.0]) + 0.5).unsqueeze(0)


def mlp(norm: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    middle = [torch.nn.BatchNorm1d(8)] if norm else []
    return torch.nn.Sequential(torch.nn.Linear(3, 8), *middle, torch.nn.Tanh(), torch.nn.Linear(8, 1))


def mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def trainer(tmp_path, micro_batch, *, n=8, norm=False, loss_fn=mse, **overrides):
    options = TrainOptions(**({"seed": 1, "max_epochs": 1, "batch_size": 8, "micro_batch": micro_batch, "lr": 0.01,
                               "resume_dir": tmp_path / "resume", "checkpoint_every": 2, "safety_margin_min": 0.0,
                               "device": "cpu"} | overrides))
    return Trainer(mlp(norm), Points(n), loss_fn, options)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_one_step_at_micro_batch_3_equals_the_step_of_the_whole_batch_of_8(tmp_path):
    """8 clips at 3 per pass (3 + 3 + 2, each loss scaled by 3/8, 3/8, 2/8): the same gradient and step."""
    whole, micro = trainer(tmp_path / "a", 8), trainer(tmp_path / "b", 3)
    assert (whole.micro_batch, micro.micro_batch) == (8, 3)
    whole_loss, micro_loss = whole.fit().final_loss, micro.fit().final_loss
    assert micro_loss == pytest.approx(whole_loss, abs=1e-6)
    for (name, a), b in zip(whole.model.named_parameters(), micro.model.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=name)


def test_under_fp16_the_scaled_micro_batch_gradients_are_unscaled_and_stepped_once(tmp_path):
    """fp16 autocast (on the CPU here) with the gradient scaler: one scaler update per step (its growth
    tracker counts steps, not passes), and the unscaled gradient is the whole batch's to fp16 rounding."""
    whole, micro = (trainer(tmp_path / name, size, precision="fp16") for name, size in (("a", 8), ("b", 3)))
    for run in (whole, micro):
        run.accel.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)  # no overflow: the step is taken
        run.fit()
    assert whole.accel.state_dict() == micro.accel.state_dict() and micro.accel.state_dict()["_growth_tracker"] == 1
    for (name, a), b in zip(whole.model.named_parameters(), micro.model.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-2, atol=1e-3, msg=name)


def test_with_batchnorm_each_micro_batch_is_normalised_by_its_own_statistics(tmp_path):
    """BatchNorm sees micro-batches: the gradient differs from the whole batch's, and its running statistics
    are updated once per micro-batch (3 times in a step of 8 at 3)."""
    whole, micro = trainer(tmp_path / "a", 0, norm=True), trainer(tmp_path / "b", 3, norm=True)
    whole.fit(), micro.fit()
    norm_whole, norm_micro = whole.model[1], micro.model[1]
    assert (int(norm_whole.num_batches_tracked), int(norm_micro.num_batches_tracked)) == (1, 3)
    assert (whole.model[0].weight.grad - micro.model[0].weight.grad).abs().max() > 1e-4


def test_a_run_at_micro_batch_4_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    """24 points, batch 8 at 4 per pass, 3 epochs (9 steps): stopped at 4 and 8, it ends bitwise equal."""
    reference = trainer(tmp_path / "ref", 4, n=24, max_epochs=3, resume_dir=None)
    losses = [r["loss"] for r in reference.fit().history]
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "4")
    run, result, stops = fit_through_stops(lambda: trainer(tmp_path, 4, n=24, max_epochs=3))
    assert stops == [4, 8] and [r["loss"] for r in result.history] == losses
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[key]), key


def test_a_run_stopped_at_the_whole_batch_resumes_at_a_smaller_micro_batch_to_the_same_end(tmp_path, monkeypatch):
    """What the retry after a CUDA out-of-memory error does: the micro-batch is no part of the resume state's
    fingerprint, and the resumed steps equal the whole-batch steps up to float rounding."""
    reference = trainer(tmp_path / "ref", 0, n=24, max_epochs=3, resume_dir=None)
    reference.fit()
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "4")
    with pytest.raises(TrainingIncomplete):
        trainer(tmp_path, 0, n=24, max_epochs=3).fit()
    monkeypatch.delenv(STOP_AFTER_STEPS_ENV)
    resumed = trainer(tmp_path, 2, n=24, max_epochs=3)
    assert resumed.resume_if_possible() and resumed.step == 4
    resumed.fit()
    for key, value in reference.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)


def test_a_cuda_out_of_memory_error_names_the_step_and_micro_batch_and_keeps_the_last_checkpoint(tmp_path):
    calls = []

    def runs_out_at_the_fourth_step(model, batch):
        calls.append(len(batch[0]))
        if len(calls) > 3 * 2:  # 2 passes a step at 4 of 8
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return mse(model, batch)

    with pytest.raises(CudaOutOfMemory, match=r"^CUDA out of memory at step 3, micro-batch 4 clips: CUDA out") as oom:
        trainer(tmp_path, 4, n=24, max_epochs=3, loss_fn=runs_out_at_the_fourth_step).fit()
    assert (oom.value.step, oom.value.micro_batch) == (3, 4)
    retry = trainer(tmp_path, 2, n=24, max_epochs=3)
    assert retry.resume_if_possible() and retry.step == 2  # the checkpoint of step 2 (--checkpoint-every 2)
    assert retry.fit().steps == 9


def test_the_micro_batch_is_at_most_the_batch(tmp_path):
    assert trainer(tmp_path, 64).micro_batch == 8
