"""Precision and fast paths: fp32 unchanged bit for bit, bf16 close to fp32, the fp16 scaler resumed exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from whatnext.models import build_model
from whatnext.runtime.precision import Acceleration, compile_regions, conv_memory_format, resolve_precision
from whatnext.runtime.trainer import (
    STOP_AFTER_STEPS_ENV,
    EpochSeededItems,
    Trainer,
    TrainingIncomplete,
    TrainOptions,
    epoch_batches,
    param_groups,
    warmup_cosine,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_trainer import DropoutRegressor, NoisyPoints, mse  # noqa: E402

OPTIONS = {"seed": 3, "max_epochs": 3, "batch_size": 6, "lr": 0.05, "warmup_epochs": 1.0, "checkpoint_every": 2,
           "safety_margin_min": 0.0}
BF16_LOSS_TOLERANCE = 0.005  # relative; measured 2e-4 (bf16 keeps 8 significant bits, 0.4% per rounding)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def weights(model) -> dict:
    return {name: value.clone() for name, value in model.state_dict().items()}


def test_auto_is_fp32_on_the_cpu_and_explicit_choices_stand():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert [resolve_precision(p, cpu) for p in ("bf16", "fp16", "fp32")] == ["bf16", "fp16", "fp32"]
    with pytest.raises(ValueError, match="fp8"):
        resolve_precision("fp8", cpu)
    assert Acceleration(cpu, "fp16").scaler.is_enabled() and not Acceleration(cpu, "bf16").scaler.is_enabled()


def test_the_cpu_path_gets_no_fast_path():
    accel = Acceleration(torch.device("cpu"))
    assert accel.optimizer_kwargs() == {}
    assert accel.loader_kwargs(0) == {"num_workers": 0, "pin_memory": False}
    assert accel.loader_kwargs(2) == {"num_workers": 2, "pin_memory": False, "persistent_workers": True, "prefetch_factor": 4}
    model = build_model({"encoder": "conv2d_tiny", "head": "attn", "img_size": 32, "num_frames": 4})
    accel.prepare(model)
    assert all(p.is_contiguous() for p in model.parameters())  # no channels_last off CUDA


def test_channels_last_is_chosen_by_the_kind_of_convolution():
    def memory_format(encoder):
        return conv_memory_format(build_model({"encoder": encoder, "head": "attn", "img_size": 32, "num_frames": 4}))

    assert memory_format("conv2d_tiny") == torch.channels_last
    assert memory_format("conv3d_tiny") == torch.channels_last_3d
    assert memory_format("mae2d_vit_tiny") is None  # patch embedding is a Linear


@pytest.mark.parametrize("encoder, region", [("mae2d_vit_tiny", "encoder.blocks.0"), ("conv2d_tiny", "encoder")])
def test_compiled_regions_keep_parameter_names_and_outputs(encoder, region):
    torch.manual_seed(0)
    model = build_model({"encoder": encoder, "head": "attn", "img_size": 32, "num_frames": 4}).eval()
    x = torch.randn(2, 4, 3, 32, 32)
    names, expected = list(model.state_dict()), model(x)
    compiled = compile_regions(model, backend="eager")
    assert region in compiled
    assert list(model.state_dict()) == names
    torch.testing.assert_close(model(x), expected)


def plain_fp32_weights(epochs: int) -> dict:
    """The training loop as the trainer ran it before precision existed: backward, AdamW step, schedule step."""
    torch.manual_seed(0)
    model, items = DropoutRegressor(), EpochSeededItems(NoisyPoints(), OPTIONS["seed"])
    optimizer = torch.optim.AdamW(param_groups(model, 0.05), lr=OPTIONS["lr"])
    steps_per_epoch = len(epoch_batches(20, 6, OPTIONS["seed"], 0, False))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps_per_epoch, epochs * steps_per_epoch))
    for epoch in range(epochs):
        for batch in epoch_batches(20, 6, OPTIONS["seed"], epoch, False):
            loss = mse(model, default_collate([items[(epoch, i)] for i in batch]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return weights(model)


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_fp32_training_is_bit_identical_to_the_plain_loop(precision):
    torch.manual_seed(0)
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), mse, TrainOptions(**OPTIONS, precision=precision))
    trainer.fit()
    expected = plain_fp32_weights(OPTIONS["max_epochs"])
    assert all(torch.equal(value, expected[name]) for name, value in weights(trainer.model).items())


def test_bf16_autocast_losses_stay_within_tolerance_of_fp32():
    clips = torch.rand(24, 4, 3, 16, 16)
    labels = torch.arange(24) % 5
    dataset = torch.utils.data.TensorDataset(clips, labels)

    def cross_entropy(model, batch):
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    def losses(precision):
        torch.manual_seed(0)
        model = build_model({"encoder": "mae2d_vit_tiny", "head": "attn", "img_size": 16, "num_frames": 4, "num_classes": 5})
        options = TrainOptions(seed=1, max_epochs=3, batch_size=8, lr=1e-3, precision=precision)
        return [row["loss"] for row in Trainer(model, dataset, cross_entropy, options).fit().history]

    fp32, bf16 = losses("fp32"), losses("bf16")
    assert fp32 != bf16  # autocast did change the arithmetic
    for full, half in zip(fp32, bf16):
        assert abs(half - full) <= BF16_LOSS_TOLERANCE * full, (fp32, bf16)


def fp16_trainer(tmp_path) -> Trainer:
    """fp16 autocast on the CPU with a scaler whose scale moves within a few steps (overflow skips, growth)."""
    torch.manual_seed(0)
    options = TrainOptions(**OPTIONS, precision="fp16", resume_dir=tmp_path / "resume")
    trainer = Trainer(DropoutRegressor(), NoisyPoints(), mse, options)
    trainer.accel.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24, growth_interval=2)
    return trainer


def test_a_resumed_fp16_run_with_its_scaler_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = fp16_trainer(tmp_path / "whole")
    whole.fit()
    assert whole.accel.scaler.get_scale() != 2.0**24  # the scale moved: its state matters

    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "5")
    with pytest.raises(TrainingIncomplete):
        fp16_trainer(tmp_path / "split").fit()
    saved = torch.load(tmp_path / "split" / "resume" / "trainer_state.pt", weights_only=True)["scaler"]
    assert saved["scale"] != 2.0**24 and saved["growth_interval"] == 2
    monkeypatch.delenv(STOP_AFTER_STEPS_ENV)
    resumed = fp16_trainer(tmp_path / "split")
    assert resumed.resume_if_possible()
    resumed.fit()
    assert all(torch.equal(value, weights(whole.model)[name]) for name, value in weights(resumed.model).items())
    assert resumed.accel.scaler.state_dict() == whole.accel.scaler.state_dict()


def test_resuming_without_the_scaler_state_would_not_be_exact(tmp_path, monkeypatch):
    whole = fp16_trainer(tmp_path / "whole")
    whole.fit()
    monkeypatch.setenv(STOP_AFTER_STEPS_ENV, "5")
    with pytest.raises(TrainingIncomplete):
        fp16_trainer(tmp_path / "split").fit()
    monkeypatch.delenv(STOP_AFTER_STEPS_ENV)
    resumed = fp16_trainer(tmp_path / "split")
    state = torch.load(tmp_path / "split" / "resume" / "trainer_state.pt", weights_only=True)
    resumed.load_state_dict({**state, "scaler": {}})  # as if the checkpoint had not kept it
    resumed.fit()
    assert not all(torch.equal(value, weights(whole.model)[name]) for name, value in weights(resumed.model).items())
